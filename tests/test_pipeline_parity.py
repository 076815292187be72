"""minibert.pipeline / minibert.classify vs transformers.pipeline("text-classification") on local checkpoints.

Exactly the same output nesting (list vs dict, single string vs list, iterator for a generator), the same labels,
and scores on the float32 error model (tests/error_model.py): the truth is a float64 run -- transformers' model
`.double()`, the same tokenizer, softmax/sigmoid in float64 -- and minibert's max score error against it may be at
most 2x transformers-fp32's max error on the same call (or, if larger, on the parity texts run alone: a few scores
estimate it poorly), plus a floor of 4 ulps of the largest score.

Labels: equal to transformers', position by position. Where they differ the float64 scores must be a tie within
the two programs' errors. Derivation: at rank k minibert has label a with score m_k, transformers label b with
t_k. Each program's sorted scores are its own (rounded) scores, so rank k of each is within that program's error
of rank k of the float64 scores: |m_k - t_k| <= e_mb + e_tf. And |ref[a] - m_k| <= e_mb, |ref[b] - t_k| <= e_tf.
So |ref[a] - ref[b]| <= 2 (e_mb + e_tf) with e_mb = the bound above and e_tf = transformers' error.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
from checkpoints import long_review
from error_model import FLOOR_ULPS, FP32_RATIO, bound_for, max_abs_error

PIPE_CKPTS = ["minilm_ckpt", "small_ckpt", "single_label_ckpt"]

TEXTS = [
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "Hi!",
    "The plot meanders for an hour, then the last twenty minutes are some of the best cinema I have seen "
    "this year: tense, funny and unexpectedly moving.",
    "naïve café, 10/10",
    "ok",
]
PAIRS = [
    TEXTS[0],
    {"text": "Is it any good?", "text_pair": TEXTS[3]},
    {"text": TEXTS[4]},  # a dict without text_pair: one text
    {"text": TEXTS[1], "text_pair": ""},  # an empty pair means no pair, in both
    TEXTS[5],
]
# name -> (minibert's input, transformers' input); transformers takes lists and generators, not tuples/arrays
INPUTS = {
    "str": lambda: (TEXTS[0], TEXTS[0]),
    "pair": lambda: (PAIRS[1], PAIRS[1]),
    "list1": lambda: (TEXTS[:1], TEXTS[:1]),
    "list6": lambda: (TEXTS, TEXTS),
    "pairs": lambda: (PAIRS, PAIRS),
    "tuple": lambda: (tuple(TEXTS), TEXTS),
    "array": lambda: (np.array(TEXTS), TEXTS),
    "generator": lambda: ((t for t in TEXTS), (t for t in TEXTS)),
}
CALL_KWARGS = {
    "default": {},
    "top_k=1": {"top_k": 1},
    "top_k=2": {"top_k": 2},
    "top_k=None": {"top_k": None},
    "fn=None": {"function_to_apply": None},
    "fn=softmax": {"function_to_apply": "softmax"},
    "fn=sigmoid": {"function_to_apply": "sigmoid"},
    "fn=none": {"function_to_apply": "none"},
    "top_k=None,fn=sigmoid": {"top_k": None, "function_to_apply": "sigmoid"},
    "batch_size=1": {"batch_size": 1},
    "batch_size=4": {"batch_size": 4},
    "top_k=2,batch_size=4,fn=none": {"top_k": 2, "batch_size": 4, "function_to_apply": "none"},
}


@cache
def hf_pipeline(ckpt_dir: str):
    import torch
    import transformers

    return transformers.pipeline(
        "text-classification", model=ckpt_dir, device="cpu", dtype=torch.float32,
        model_kwargs={"attn_implementation": "eager"},
    )


@cache
def mb_pipeline(ckpt_dir: str, task: str = "sentiment-analysis", dtype: str | None = None):
    import minibert

    return minibert.pipeline(task, model=ckpt_dir, dtype=dtype)


# --- the float64 reference ---------------------------------------------------------------------------


def hf_function(config, function_to_apply: str | None) -> str:
    """transformers' TextClassificationPipeline.postprocess choice of function, as its code makes it."""
    if function_to_apply is not None:
        return function_to_apply
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


@pytest.fixture(scope="module")
def reference64(torch_ref, hf_tokenizer):
    """reference64(ckpt, item, function_to_apply) -> [L] float64 scores: transformers' tokenizer, its model
    .double(), and transformers' own softmax/sigmoid (NumPy functions, run here on float64 logits).
    dtype="float32": the same with its float32 model, text alone (for the pool that estimates its error)."""
    from transformers.pipelines.text_classification import sigmoid, softmax

    @cache
    def run(ckpt: str, text: str, pair: str | None, dtype: str) -> np.ndarray:
        enc = hf_tokenizer(ckpt)(text, pair or None, truncation=True, return_tensors="np")
        return torch_ref(ckpt, True, enc["input_ids"], enc["attention_mask"], dtype=dtype)[0]

    def scores(ckpt: str, item, function_to_apply: str | None, dtype: str = "float64") -> np.ndarray:
        text, pair = (item, None) if isinstance(item, str) else (item["text"], item.get("text_pair"))
        logits = run(ckpt, text, pair, dtype)
        function = hf_function(hf_pipeline(ckpt).model.config, function_to_apply)
        return {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}[function](logits)

    return scores


# --- comparing outputs ---------------------------------------------------------------------------


def skeleton(out):
    """The output's nesting and types, with labels and scores left out."""
    if isinstance(out, list):
        return [skeleton(x) for x in out]
    assert isinstance(out, dict), f"expected a dict, got {type(out).__name__}: {out!r}"
    return ("dict", tuple(sorted(out)), type(out["label"]).__name__, type(out["score"]).__name__)


def per_text(out, single: bool) -> list[list[dict]]:
    """One ranked list of {"label", "score"} per text, whatever the nesting."""
    if isinstance(out, dict):
        return [[out]]
    if single:  # a str: [dict] (legacy) or one text's ranked list
        return [out]
    return [[r] if isinstance(r, dict) else r for r in out]


def check_scores(got, want, items, ckpt: str, function_to_apply, reference64, record=None) -> None:
    """Same nesting; labels equal (or a float64 tie within both programs' errors); minibert's max score error
    vs float64 <= FP32_RATIO x transformers' + floor (error_model.check_fp32, with each program scored at the labels
    it returned)."""
    assert skeleton(got) == skeleton(want)
    single = isinstance(items, (str, dict))
    items = [items] if single else list(items)
    id2label = hf_pipeline(ckpt).model.config.id2label
    label2id = {label: i for i, label in id2label.items()}
    got_rows, want_rows = per_text(got, single), per_text(want, single)
    assert len(got_rows) == len(want_rows) == len(items)
    refs = [reference64(ckpt, item, function_to_apply) for item in items]
    # each program's scores, and the float64 scores of the labels it returned
    mb = [(r["score"], ref[label2id[r["label"]]]) for row, ref in zip(got_rows, refs, strict=True) for r in row]
    tf = [(r["score"], ref[label2id[r["label"]]]) for row, ref in zip(want_rows, refs, strict=True) for r in row]
    err = max_abs_error([s for s, _ in mb], [r for _, r in mb])
    tf_err = max_abs_error([s for s, _ in tf], [r for _, r in tf])
    # a call's few scores estimate transformers' error poorly: pool it over the parity texts (error_model's pool=)
    pooled = max_abs_error([reference64(ckpt, t, function_to_apply, "float32") for t in TEXTS],
                           [reference64(ckpt, t, function_to_apply) for t in TEXTS])
    bound = bound_for(max(tf_err, pooled), [r for _, r in tf])
    assert err <= bound, (
        f"score error vs float64 {err:.3e}; transformers' is {tf_err:.3e} (pooled {pooled:.3e}), so the bound is "
        f"{bound:.3e} ({FP32_RATIO}x transformers + {FLOOR_ULPS} ulps of the largest score)"
    )
    tie = 2 * (bound + max(tf_err, pooled))
    for i, (g_row, w_row, ref) in enumerate(zip(got_rows, want_rows, refs, strict=True)):
        for g, w in zip(g_row, w_row, strict=True):
            gap = abs(ref[label2id[g["label"]]] - ref[label2id[w["label"]]])
            assert g["label"] == w["label"] or gap <= tie, (
                f"text {i}: label {g['label']} != transformers' {w['label']}, and their float64 scores differ by "
                f"{gap:.3e} > {tie:.3e}, more than both programs' errors allow"
            )
    if record is not None:
        record(err, tf_err)


# --- tests ---------------------------------------------------------------------------------------------------

# Every call variant on the two tiny checkpoints; on the 6-layer MiniLM (real weights, slower) the ones
# that exercise distinct paths: legacy nesting, sorted full output, raw logits, batching with padding.
# (tuples and arrays are lists to the pipeline; the tiny checkpoints cover them.)
MINILM_CALLS = ["default", "top_k=None", "fn=none", "top_k=2,batch_size=4,fn=none"]
MINILM_INPUTS = ["str", "list6", "pairs", "generator"]
PIPELINE_CASES = [
    pytest.param(ckpt, inputs, call, id=f"{ckpt}-{inputs}-{call}")
    for ckpt in PIPE_CKPTS
    for call in (MINILM_CALLS if ckpt == "minilm_ckpt" else CALL_KWARGS)
    for inputs in (MINILM_INPUTS if ckpt == "minilm_ckpt" else INPUTS)
]


@pytest.mark.parametrize(("ckpt_name", "inputs", "call"), PIPELINE_CASES)
def test_pipeline_matches_transformers(ckpt_name, inputs, call, request, reference64, record_error):
    ckpt = str(request.getfixturevalue(ckpt_name))
    kwargs = CALL_KWARGS[call]
    ours, theirs = INPUTS[inputs]()
    items = list(ours) if isinstance(ours, np.ndarray) else ours
    want = hf_pipeline(ckpt)(theirs, **kwargs)
    got = mb_pipeline(ckpt)(ours, **kwargs)
    if inputs == "generator":  # both return lazy iterators, not lists
        assert isinstance(got, Iterator) and not isinstance(got, list)
        got, want, items = list(got), list(want), TEXTS
    record = None
    if inputs == "list6" and call in ("default", "fn=none"):
        def record(err, tf_err):
            record_error(ckpt_name, "pipeline, 6 texts", "numba", f"scores ({call})", err, tf_err)
    check_scores(got, want, items, ckpt, kwargs.get("function_to_apply"), reference64, record)


@pytest.mark.parametrize("call", ["default", "top_k=None"])
@pytest.mark.parametrize("ckpt_name", PIPE_CKPTS)
def test_classify_matches_transformers(ckpt_name, call, request, reference64):
    import minibert

    ckpt = str(request.getfixturevalue(ckpt_name))
    kwargs = CALL_KWARGS[call]
    for name in ("str", "list6", "pairs"):
        ours, theirs = INPUTS[name]()
        got = minibert.classify(ours, model=ckpt, **kwargs)
        check_scores(got, hf_pipeline(ckpt)(theirs, **kwargs), ours, ckpt, None, reference64)


def test_text_classification_task_name(small_ckpt, reference64):
    ckpt = str(small_ckpt)
    got = mb_pipeline(ckpt, "text-classification")(TEXTS, top_k=None)
    check_scores(got, hf_pipeline(ckpt)(TEXTS, top_k=None), TEXTS, ckpt, None, reference64)


@pytest.mark.parametrize("ckpt_name", ["minilm_ckpt", "small_ckpt"])
def test_long_review_is_truncated(ckpt_name, request, hf_tokenizer, reference64):
    """minibert truncates to 512 by default; transformers' pipeline only with truncation=True."""
    import minibert

    ckpt = str(request.getfixturevalue(ckpt_name))
    review = long_review(600)
    assert len(review.split()) == 600
    assert len(hf_tokenizer(ckpt)(review)["input_ids"]) > 512  # otherwise nothing is being truncated
    want = hf_pipeline(ckpt)(review, truncation=True)
    check_scores(mb_pipeline(ckpt)(review), want, review, ckpt, None, reference64)
    both = [review, TEXTS[1]]
    got = minibert.classify(both, model=ckpt, batch_size=2)
    check_scores(got, hf_pipeline(ckpt)(both, truncation=True, batch_size=2), both, ckpt, None, reference64)


@pytest.mark.parametrize(("ckpt_name", "n"), [("minilm_ckpt", 16), ("small_ckpt", 40)])
def test_mixed_lengths_sorted_into_batches_match_transformers(ckpt_name, n, request, reference64):
    """Texts of very different lengths, batch_size 8: minibert sorts them into batches by length, transformers
    batches them in input order; results must come back in input order and agree as above."""
    import random

    rng = random.Random(7)
    texts = [rng.choice(TEXTS) if rng.random() < 0.7 else long_review(rng.randint(20, 150)) for _ in range(n)]
    ckpt = str(request.getfixturevalue(ckpt_name))
    for kwargs in ({"batch_size": 8}, {"batch_size": 8, "top_k": None, "function_to_apply": "none"}):
        got = list(mb_pipeline(ckpt)(iter(texts), **kwargs))
        want = hf_pipeline(ckpt)(texts, **kwargs)
        check_scores(got, want, texts, ckpt, kwargs.get("function_to_apply"), reference64)


@pytest.mark.parametrize("ckpt_name", PIPE_CKPTS)
def test_float64_pipeline_is_the_reference(ckpt_name, request, reference64):
    """dtype="float64" runs every step in float64: its scores are transformers' .double() ones, to <= 1e-10 (the
    float64 mode's documented agreement; measured ~1e-15)."""
    ckpt = str(request.getfixturevalue(ckpt_name))
    got = mb_pipeline(ckpt, dtype="float64")(PAIRS, top_k=None, function_to_apply="none", batch_size=4)
    label2id = {label: i for i, label in hf_pipeline(ckpt).model.config.id2label.items()}
    for row, item in zip(got, PAIRS, strict=True):
        ref = reference64(ckpt, item, "none")
        assert max(abs(r["score"] - ref[label2id[r["label"]]]) for r in row) <= 1e-10
