"""Pipelines of the other heads vs transformers' pipelines on the same random-init checkpoints:
fill-mask, token-classification ("ner", every aggregation strategy), question-answering (against a
reference that follows transformers 4.57's pipeline, built from transformers' own tokenizer and
model, since transformers 5 dropped it), BERT text classification through the pooler, and
multi-label classification.

Words, tokens, labels, spans and answers must be equal; scores are held to the float32 error model
(minibert's error against the pipeline run on `model.double()` at most 2x that of the float32 run).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
import transformers
from checkpoints import long_review
from checkpoints_heads import make_head_checkpoint, torch_model
from error_model import check_fp32

import minibert

FILL_TEXTS = [
    "Paris is the [MASK] of France.",
    "The [MASK] sat on the [MASK].",
    "naïve café owners serve crème [MASK] for 12.50 CHF!!!",
]
NER_TEXTS = [
    "Ada Lovelace wrote the first program in London.",
    "Hugging Face Inc. is a company based in New York City; its headquarters are in DUMBO.",
    "naïve café owners in Zürich serve crème brûlée for 12.50 CHF!!!",
    "Sehr geehrte Damen und Herren, ☃ ist kein Wort.",
]
QA_CONTEXT = (
    "Ada Lovelace was an English mathematician and writer, chiefly known for her work on Charles "
    "Babbage's proposed mechanical general-purpose computer, the Analytical Engine. She was the first "
    "to recognise that the machine had applications beyond pure calculation. She was born in London in 1815."
)
QA_QUESTIONS = ["Who was Ada Lovelace?", "Where was she born?", "What did Babbage propose?"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    built = {}

    def get(arch, size, head, **overrides):
        key = (arch, size, head, tuple(sorted(overrides.items())))
        if key not in built:
            out = tmp_path_factory.mktemp(f"{arch}_{size}_{head}")
            built[key] = make_head_checkpoint(out, arch, size, head, seed=len(built) + 20, **overrides)
        return built[key]

    return get


def hf_pipelines(task, ckpt_dir, head, arch):
    """transformers' pipeline for `task` on the float32 model and on its model.double() twin."""
    tok = transformers.AutoTokenizer.from_pretrained(ckpt_dir)
    if arch == "distilbert":  # transformers 5 gives a DistilBERT dir a BERT tokenizer; DistilBERT takes no types
        tok.model_input_names = ["input_ids", "attention_mask"]
    return [transformers.pipeline(task, model=torch_model(str(ckpt_dir), head, dtype), tokenizer=tok)
            for dtype in ("float32", "float64")]


class Scores:
    """Scores gathered over all of a test's calls, then held to the float32 error model at once (a handful of
    derived probabilities alone can have a torch error that is small by chance)."""

    def __init__(self):
        self.values = ([], [], [])

    def check(self):
        assert self.values[0], "no scores were compared"
        check_fp32(*(np.array(v) for v in self.values))


def check_same(got, want32, want64, collect: Scores, score_keys=("score",)):
    """Same nesting, keys, types and non-score values; scores collected for the float32 error model."""
    scores = collect.values

    def walk(g, w32, w64, path):
        assert type(g) is type(w32) or (isinstance(g, float) and isinstance(w32, float)), (path, type(g), type(w32))
        if isinstance(w32, list):
            assert len(g) == len(w32), (path, len(g), len(w32))
            for i, items in enumerate(zip(g, w32, w64, strict=True)):
                walk(*items, f"{path}[{i}]")
        elif isinstance(w32, dict):
            assert list(g) == list(w32), (path, list(g), list(w32))
            for key in w32:
                if key in score_keys:
                    assert type(g[key]) is type(w32[key]), (path, key, type(g[key]), type(w32[key]))
                    for bucket, value in zip(scores, (g[key], w32[key], w64[key]), strict=True):
                        bucket.append(float(value))
                else:
                    assert g[key] == w32[key], (f"{path}[{key!r}]", g[key], w32[key])
        else:
            assert g == w32, (path, g, w32)

    before = len(scores[0])
    walk(got, want32, want64, "")
    return len(scores[0]) - before


# --- fill-mask --------------------------------------------------------------------------------


PIPELINE_CKPTS = [("distilbert", "tiny"), ("bert", "tiny")]  # every head at both sizes: test_heads.py


@pytest.mark.parametrize("arch, size", PIPELINE_CKPTS)
def test_fill_mask_equals_transformers(ckpt, arch, size):
    directory = ckpt(arch, size, "masked_lm")
    ours = minibert.pipeline("fill-mask", model=directory, batch_size=2)
    ref32, ref64 = hf_pipelines("fill-mask", directory, "masked_lm", arch)
    scores = Scores()
    for kwargs in ({}, {"top_k": 2}, {"targets": ["paris", "capital", "the", "cat"]}, {"top_k": 1, "targets": "mat"}):
        check_same(ours(FILL_TEXTS, **kwargs), ref32(FILL_TEXTS, **kwargs), ref64(FILL_TEXTS, **kwargs), scores)
    check_same(ours(FILL_TEXTS[0]), ref32(FILL_TEXTS[0]), ref64(FILL_TEXTS[0]), scores)  # one text: the bare list
    check_same(ours(FILL_TEXTS[:1]), ref32(FILL_TEXTS[:1]), ref64(FILL_TEXTS[:1]), scores)  # one-text list: bare too
    scores.check()


def test_fill_mask_errors(ckpt):
    fill = minibert.pipeline("fill-mask", model=ckpt("distilbert", "tiny", "masked_lm"))
    with pytest.raises(ValueError, match=r"inputs\[1\] has no \[MASK\] token"):
        fill(["a [MASK] b", "no mask here"])
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        fill("a [MASK]", top_k=0)
    with pytest.raises(TypeError, match=r"targets\[0\] is int"):
        fill("a [MASK]", targets=[3])
    with pytest.raises(ValueError, match="needs model="):
        minibert.pipeline("fill-mask")
    with pytest.raises(ValueError, match="has no masked-LM head"):
        minibert.pipeline("fill-mask", model=ckpt("distilbert", "tiny", "base"))


# --- token-classification ---------------------------------------------------------------------


@pytest.mark.parametrize("arch, size", PIPELINE_CKPTS)
def test_token_classification_equals_transformers(ckpt, arch, size):
    directory = ckpt(arch, size, "token_classification")
    ours = minibert.pipeline("ner", model=directory, batch_size=3)
    ref32, ref64 = hf_pipelines("token-classification", directory, "token_classification", arch)
    for strategy in ("none", "simple", "first", "average", "max"):
        scores = Scores()
        for kwargs in ({"ignore_labels": []}, {}) if strategy == "simple" else ({"ignore_labels": []},):
            kwargs["aggregation_strategy"] = strategy
            check_same(ours(NER_TEXTS, **kwargs), ref32(NER_TEXTS, **kwargs), ref64(NER_TEXTS, **kwargs), scores)
        one = {"aggregation_strategy": strategy, "ignore_labels": []}
        assert check_same(ours(NER_TEXTS[0], **one), ref32(NER_TEXTS[0], **one), ref64(NER_TEXTS[0], **one),
                          scores) > 0
        scores.check()


def test_token_classification_errors(ckpt):
    ner = minibert.pipeline("token-classification", model=ckpt("bert", "tiny", "token_classification"))
    with pytest.raises(ValueError, match="aggregation_strategy must be one of"):
        ner("x", aggregation_strategy="longest")
    with pytest.raises(TypeError, match=r"inputs\[1\] is NoneType"):
        ner(["x", None])


# --- question-answering -----------------------------------------------------------------------


@cache
def hf_tokenizer(directory: str):
    return transformers.AutoTokenizer.from_pretrained(directory)


def reference_qa(directory, arch, dtype, question, context, top_k=1, doc_stride=None, max_answer_len=15,
                 max_seq_len=None, handle_impossible_answer=False, align_to_words=True):
    """transformers 4.57's QuestionAnsweringPipeline (preprocess, _forward, postprocess, select_starts_ends,
    decode_spans, get_indices, get_answer) on transformers' fast tokenizer and torch model, one example."""
    tokenizer = hf_tokenizer(str(directory))
    model = torch_model(str(directory), "question_answering", dtype)
    if max_seq_len is None:
        max_seq_len = min(tokenizer.model_max_length, 384)
    if doc_stride is None:
        doc_stride = min(max_seq_len // 2, 128)
    encoded = tokenizer(text=question, text_pair=context, padding="do_not_pad", truncation="only_second",
                        max_length=max_seq_len, stride=doc_stride, return_token_type_ids=True,
                        return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    min_null_score = 1000000
    answers = []
    for span in range(len(encoded["input_ids"])):
        ids = encoded["input_ids"][span]
        p_mask = np.asarray([tok != 1 for tok in encoded.sequence_ids(span)])
        p_mask[np.nonzero(np.array(ids) == tokenizer.cls_token_id)] = 0
        inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.tensor([encoded["attention_mask"][span]])}
        if arch == "bert":
            inputs["token_type_ids"] = torch.tensor([encoded["token_type_ids"][span]])
        with torch.no_grad():
            out = model(**inputs)
        start, end = out.start_logits.numpy(), out.end_logits.numpy()  # [1, T]
        # select_starts_ends
        undesired_tokens = np.abs(np.array(p_mask) - 1) & inputs["attention_mask"].numpy()
        undesired_tokens_mask = undesired_tokens == 0.0
        start = np.where(undesired_tokens_mask, -10000.0, start)
        end = np.where(undesired_tokens_mask, -10000.0, end)
        start = np.exp(start - start.max(axis=-1, keepdims=True))
        start = start / start.sum()
        end = np.exp(end - end.max(axis=-1, keepdims=True))
        end = end / end.sum()
        if handle_impossible_answer:
            min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
        start[0, 0] = end[0, 0] = 0.0
        # decode_spans
        outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
        candidates = np.tril(np.triu(outer), max_answer_len - 1)
        scores_flat = candidates.flatten()
        if top_k == 1:
            idx_sort = [np.argmax(scores_flat)]
        elif len(scores_flat) < top_k:
            idx_sort = np.argsort(-scores_flat)
        else:
            idx = np.argpartition(-scores_flat, top_k)[0:top_k]
            idx_sort = idx[np.argsort(-scores_flat[idx])]
        starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
        desired = np.isin(starts, undesired_tokens.nonzero()) & np.isin(ends, undesired_tokens.nonzero())
        starts, ends = starts[desired], ends[desired]
        scores = candidates[0, starts, ends]
        enc = encoded[span]  # the Rust Encoding of this window
        for s, e, score in zip(starts, ends, scores, strict=True):
            if align_to_words:
                try:
                    start_index = enc.word_to_chars(enc.token_to_word(s), sequence_index=1)[0]
                    end_index = enc.word_to_chars(enc.token_to_word(e), sequence_index=1)[1]
                except Exception:
                    start_index, end_index = enc.offsets[s][0], enc.offsets[e][1]
            else:
                start_index, end_index = enc.offsets[s][0], enc.offsets[e][1]
            target = context[start_index:end_index]
            same = next((a for a in answers if a["answer"].lower() == target.lower()), None)
            if same:
                same["score"] += score.item()
            else:
                answers.append({"score": score.item(), "start": start_index, "end": end_index, "answer": target})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


QA_OPTIONS = [
    {},
    {"top_k": 5, "max_answer_len": 3},
    {"handle_impossible_answer": True, "top_k": 2},
    {"align_to_words": False, "top_k": 4},
    {"max_seq_len": 48, "doc_stride": 16, "top_k": 6},  # many overlapping windows: answers merged across them
]


@pytest.mark.parametrize("arch, size", PIPELINE_CKPTS)
def test_question_answering_equals_transformers_457(ckpt, arch, size):
    directory = ckpt(arch, size, "question_answering")
    qa = minibert.pipeline("question-answering", model=directory)
    long_context = QA_CONTEXT + " " + long_review(120)
    scores = Scores()
    for options in QA_OPTIONS:
        for question, context in [(QA_QUESTIONS[0], QA_CONTEXT), (QA_QUESTIONS[1], long_context)]:
            got = qa(question=question, context=context, **options)
            want32 = reference_qa(directory, arch, "float32", question, context, **options)
            want64 = reference_qa(directory, arch, "float64", question, context, **options)
            check_same(got, want32, want64, scores)
    # several examples: a list with one result per example, in each call form
    batch = [{"question": q, "context": QA_CONTEXT} for q in QA_QUESTIONS]
    want = [reference_qa(directory, arch, "float32", q, QA_CONTEXT) for q in QA_QUESTIONS]
    want64 = [reference_qa(directory, arch, "float64", q, QA_CONTEXT) for q in QA_QUESTIONS]
    check_same(qa(batch), want, want64, scores)
    check_same(qa(question=QA_QUESTIONS, context=QA_CONTEXT), want, want64, scores)
    check_same(qa(QA_QUESTIONS[0], QA_CONTEXT), want[0], want64[0], scores)
    scores.check()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda qa: qa(question="q", context=""), ValueError, r"inputs\[0\]\['context'\] must be a non-empty str"),
        (lambda qa: qa([{"question": "q"}]), ValueError, r"inputs\[0\] must be \{'question': str, 'context': str\}"),
        (lambda qa: qa(question=["a", "b"], context=["c"]), ValueError, "question has 2 items but context has 1"),
        (lambda qa: qa(question="q", context="c", top_k=0), ValueError, "top_k must be an int >= 1"),
        (lambda qa: qa(question="q", context="c", max_seq_len=32, doc_stride=40), ValueError, "doc_stride"),
        (lambda qa: qa(question="why " * 40, context="c", max_seq_len=32), ValueError, r"inputs\[0\] cannot be split"),
        (lambda qa: qa(), TypeError, "pass question= and context="),
    ],
)
def test_question_answering_errors(ckpt, call, error, message):
    qa = minibert.pipeline("question-answering", model=ckpt("distilbert", "tiny", "question_answering"))
    with pytest.raises(error, match=message):
        call(qa)


# --- sequence classification: BERT through the pooler, multi-label --------------------------------


@pytest.mark.parametrize("arch, size, problem_type", [
    ("bert", "tiny", None),
    ("bert", "small", "multi_label_classification"),
    ("distilbert", "tiny", "multi_label_classification"),
])
def test_text_classification_equals_transformers(ckpt, arch, size, problem_type):
    """BERT classifies the pooled [CLS] (pairs with token types); multi-label applies a sigmoid per label."""
    directory = ckpt(arch, size, "sequence_classification", problem_type=problem_type)
    ours = minibert.pipeline("text-classification", model=directory, batch_size=2)
    assert ours.model.config.problem_type == problem_type
    ref32, ref64 = hf_pipelines("text-classification", directory, "sequence_classification", arch)
    pairs = [{"text": t, "text_pair": q} for t, q in zip(NER_TEXTS, QA_QUESTIONS, strict=False)]
    scores = Scores()
    for inputs in (NER_TEXTS, pairs):
        for kwargs in ({}, {"top_k": None}):
            check_same(ours(inputs, **kwargs), ref32(inputs, **kwargs), ref64(inputs, **kwargs), scores)
    scores.check()
    if problem_type == "multi_label_classification":  # sigmoid: the label scores do not sum to 1
        scores = [d["score"] for d in ours(NER_TEXTS[0], top_k=None)]
        assert abs(sum(scores) - 1) > 1e-3


def test_loaded_models_and_wrong_heads(ckpt):
    """A loaded model plus tokenizer gives the same pipeline as its directory; a model of another head is refused."""
    directory = ckpt("distilbert", "tiny", "masked_lm")
    model = minibert.AutoModelForMaskedLM.from_pretrained(directory)
    tok = minibert.AutoTokenizer.from_pretrained(directory)
    by_object = minibert.pipeline("fill-mask", model=model, tokenizer=tok)
    assert by_object(FILL_TEXTS) == minibert.pipeline("fill-mask", model=directory)(FILL_TEXTS)
    with pytest.raises(ValueError, match="pass tokenizer="):
        minibert.pipeline("fill-mask", model=model)
    with pytest.raises(TypeError, match="must be a hub id, a directory or one of DistilBertForQuestionAnswering"):
        minibert.pipeline("question-answering", model=model, tokenizer=tok)
