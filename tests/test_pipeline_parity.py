"""minibert.pipeline / minibert.classify vs transformers.pipeline("text-classification") on local checkpoints.

Same labels, scores within 1e-5, and exactly the same output nesting (list vs dict, single string vs list).
"""

from __future__ import annotations

from functools import cache

import pytest
from checkpoints import long_review

SCORE_ATOL = 1e-5
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
INPUTS = {"str": TEXTS[0], "list1": TEXTS[:1], "list6": TEXTS}
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
def mb_pipeline(ckpt_dir: str, task: str = "sentiment-analysis"):
    import minibert

    return minibert.pipeline(task, model=ckpt_dir)


def assert_same_output(got, want, where="output"):
    """Same nesting, same types, same labels (and order), scores within SCORE_ATOL."""
    if isinstance(want, list):
        assert isinstance(got, list), f"{where}: expected a list, got {type(got).__name__}: {got!r}"
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_output(g, w, f"{where}[{i}]")
    else:
        assert isinstance(want, dict)
        assert isinstance(got, dict), f"{where}: expected a dict, got {type(got).__name__}: {got!r}"
        assert set(got) == set(want) == {"label", "score"}, f"{where}: keys {sorted(got)}"
        assert got["label"] == want["label"], f"{where}: {got} != {want}"
        assert type(got["score"]) is float, f"{where}: score is {type(got['score']).__name__}"
        assert abs(got["score"] - want["score"]) <= SCORE_ATOL, f"{where}: {got} != {want}"


# Every call variant on the two tiny checkpoints; on the 6-layer MiniLM (real weights, slower) the ones
# that exercise distinct paths: legacy nesting, sorted full output, raw logits, batching with padding.
MINILM_CALLS = ["default", "top_k=None", "fn=none", "top_k=2,batch_size=4,fn=none"]
PIPELINE_CASES = [
    pytest.param(ckpt, inputs, call, id=f"{ckpt}-{inputs}-{call}")
    for ckpt in PIPE_CKPTS
    for call in (MINILM_CALLS if ckpt == "minilm_ckpt" else CALL_KWARGS)
    for inputs in INPUTS
]


@pytest.mark.parametrize(("ckpt_name", "inputs", "call"), PIPELINE_CASES)
def test_pipeline_matches_transformers(ckpt_name, inputs, call, request):
    ckpt = str(request.getfixturevalue(ckpt_name))
    kwargs = CALL_KWARGS[call]
    want = hf_pipeline(ckpt)(INPUTS[inputs], **kwargs)
    got = mb_pipeline(ckpt)(INPUTS[inputs], **kwargs)
    assert_same_output(got, want)


@pytest.mark.parametrize("call", ["default", "top_k=None"])
@pytest.mark.parametrize("ckpt_name", PIPE_CKPTS)
def test_classify_matches_transformers(ckpt_name, call, request):
    import minibert

    ckpt = str(request.getfixturevalue(ckpt_name))
    kwargs = CALL_KWARGS[call]
    for inputs in INPUTS.values():
        assert_same_output(minibert.classify(inputs, model=ckpt, **kwargs), hf_pipeline(ckpt)(inputs, **kwargs))


def test_text_classification_task_name(small_ckpt):
    ckpt = str(small_ckpt)
    got = mb_pipeline(ckpt, "text-classification")(TEXTS, top_k=None)
    assert_same_output(got, hf_pipeline(ckpt)(TEXTS, top_k=None))


@pytest.mark.parametrize("ckpt_name", ["minilm_ckpt", "small_ckpt"])
def test_long_review_is_truncated(ckpt_name, request, hf_tokenizer):
    """minibert truncates to 512 by default; transformers' pipeline only with truncation=True."""
    import minibert

    ckpt = str(request.getfixturevalue(ckpt_name))
    review = long_review(600)
    assert len(review.split()) == 600
    assert len(hf_tokenizer(ckpt)(review)["input_ids"]) > 512  # otherwise nothing is being truncated
    want = hf_pipeline(ckpt)(review, truncation=True)
    assert_same_output(mb_pipeline(ckpt)(review), want)
    assert_same_output(minibert.classify([review, TEXTS[1]], model=ckpt), hf_pipeline(ckpt)(
        [review, TEXTS[1]], truncation=True
    ))

