"""Bad pipeline input gives a clear TypeError/ValueError naming the item (its index in the input), never a deep
traceback, for every kind of input: one text, a list, a tuple, a NumPy array, a generator."""

import itertools
import re

import numpy as np
import pytest
from checkpoints import long_review

import minibert


@pytest.fixture(scope="module")
def clf(small_ckpt):
    return minibert.pipeline("sentiment-analysis", model=small_ckpt)


class CountingModel:
    """The pipeline's model, counting forward passes (to show a bad item fails before any compute)."""

    def __init__(self, model):
        self.model, self.config, self.calls = model, model.config, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def counting(clf) -> minibert.TextClassificationPipeline:
    return minibert.TextClassificationPipeline(CountingModel(clf.model), clf.tokenizer)


BAD = "inputs must be a str, a {'text', 'text_pair'} dict or an iterable of them"


@pytest.mark.parametrize(
    "inputs, kwargs, error, message",
    [
        (123, {}, TypeError, re.escape(BAD) + ", got int"),
        (None, {}, TypeError, "got NoneType"),
        (b"bytes", {}, TypeError, r"got bytes \(decode it first"),
        (bytearray(b"x"), {}, TypeError, r"got bytearray \(decode it first"),
        (np.array("one text"), {}, TypeError, r"a NumPy array of texts must be 1-D, got shape \(\)"),
        (np.array([["a", "b"]]), {}, TypeError, r"must be 1-D, got shape \(1, 2\)"),
        (["fine", None], {}, TypeError, r"inputs\[1\] is NoneType; expected str"),
        (["fine", 3.5], {}, TypeError, r"inputs\[1\] is float"),
        (["fine", b"x"], {}, TypeError, r"inputs\[1\] is bytes; .*decode it first"),
        (("fine", "ok", 7), {}, TypeError, r"inputs\[2\] is int"),
        (np.array(["fine", None], dtype=object), {}, TypeError, r"inputs\[1\] is NoneType"),
        (["fine", ["pre", "tokenized"]], {}, TypeError, r"inputs\[1\] is list"),
        ([{"text": "a", "label": 1}], {}, ValueError, r"inputs\[0\] must be \{'text': str, 'text_pair': str\}"),
        ([{"text": 3}], {}, ValueError, r"inputs\[0\] must be .*got \{'text': 'int'\}"),
        ([{"text_pair": "b"}], {}, ValueError, r"inputs\[0\] must be"),
        ({"text": "a", "text_pair": None}, {}, ValueError, r"^inputs must be \{'text'"),
        (["ok", "caf\udce9"], {}, ValueError, r"inputs\[1\] cannot be encoded as UTF-8: lone surrogate '\\udce9' at "
                                              r"position 3"),
        ("\ud800", {}, ValueError, r"^inputs cannot be encoded as UTF-8: lone surrogate '\\ud800' at position 0"),
        ([{"text": "a", "text_pair": "\udc80"}], {}, ValueError, r"inputs\[0\]\['text_pair'\] cannot be encoded"),
        (["ok"], {"top_k": 0}, ValueError, "top_k must be a positive int or None"),
        (["ok"], {"top_k": "2"}, ValueError, "top_k must be a positive int or None"),
        (["ok"], {"function_to_apply": "relu"}, ValueError, "function_to_apply must be one of"),
        (["ok"], {"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        (["ok"], {"batch_size": True}, ValueError, "batch_size must be a positive int"),
        (["ok"], {"sort_window": 0}, ValueError, "sort_window must be a positive int"),
        (["ok"], {"sort_window": "big"}, ValueError, "sort_window must be a positive int"),
        (["ok"], {"truncation": "sideways"}, ValueError, "truncation='sideways' is not valid"),
        (["ok"], {"max_length": 2}, ValueError, "max_length=2 leaves no room for text"),
        (["ok", long_review(600)], {"truncation": False}, ValueError,
         r"inputs\[1\] has \d+ tokens but the model takes at most 512; leave truncation on"),
        ([{"text": "a " * 20, "text_pair": "b"}], {"truncation": "only_second", "max_length": 8}, ValueError,
         r"inputs\[0\]: cannot truncate text \+ text_pair to max_length=8"),
    ],
)
def test_bad_pipeline_input_is_named(clf, inputs, kwargs, error, message):
    with pytest.raises(error, match=message):
        clf(inputs, **kwargs)


def test_bad_item_in_a_collection_fails_before_any_compute(clf):
    counted = counting(clf)
    texts = ["fine"] * 300 + ["caf\udce9"]
    for inputs in (texts, tuple(texts), np.array(texts, dtype=object), texts[:-1] + [None]):
        with pytest.raises((TypeError, ValueError), match=r"inputs\[300\]"):
            counted(inputs, batch_size=8)
    assert counted.model.calls == 0


@pytest.mark.parametrize(("position", "bad"), [(10_000, None), (10, b"raw"), (10, "x\ud83d"), (10, {"txt": "typo"})])
def test_bad_item_deep_in_a_stream_is_named_after_the_items_before_it(clf, position, bad):
    """Item 10,000 of a generator is bad: the 10,000 before it get their results (in order), then the error
    names index 10000 -- as a lazy map would, so a consumer writing results out loses nothing before it."""
    texts = [f"text number {i}" for i in range(position)]
    results = []
    with pytest.raises((TypeError, ValueError), match=rf"inputs\[{position}\]"):
        for result in clf(itertools.chain(texts, [bad], ["never read"]), batch_size=256, sort_window=512):
            results.append(result)
    assert len(results) == position
    if position < 1000:  # (test_pipeline_streaming checks long streams against lists)
        assert results == clf(texts, batch_size=256, sort_window=512)


def test_the_inputs_own_error_comes_through_unchanged_after_the_items_before_it(clf):
    failure = OSError("disk gone")

    def lines():
        yield from ["one", "two", "three"]
        raise failure

    results = []
    with pytest.raises(OSError) as info:
        for result in clf(lines(), batch_size=2):
            results.append(result)
    assert info.value is failure
    assert results == clf(["one", "two", "three"], batch_size=2)


def test_bad_options_fail_at_the_call_before_a_stream_is_read(clf):
    pulled = []

    def texts():
        for i in range(5):
            pulled.append(i)
            yield "fine"

    for kwargs in ({"top_k": -1}, {"batch_size": 0}, {"sort_window": -3}, {"function_to_apply": "tanh"},
                   {"truncation": "maybe"}):
        with pytest.raises(ValueError):
            clf(texts(), **kwargs)
    assert pulled == []


@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=str), set(), iter([]), (t for t in [])])
def test_empty_inputs_give_empty_results(clf, empty):
    out = clf(empty)
    assert (out == []) if isinstance(empty, (list, tuple, np.ndarray, set)) else (list(out) == [])


def test_unknown_task_and_model_type(small_ckpt):
    with pytest.raises(ValueError, match="supports the tasks"):
        minibert.pipeline("summarization", model=small_ckpt)
    with pytest.raises(TypeError, match="model must be a hub id"):
        minibert.pipeline("sentiment-analysis", model=42)
    model = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt)
    with pytest.raises(ValueError, match="pass tokenizer="):
        minibert.pipeline("sentiment-analysis", model=model)


def test_bad_dtype_is_named(small_ckpt):
    with pytest.raises(ValueError, match=r"dtype must be one of .*'float16'"):
        minibert.pipeline("sentiment-analysis", model=small_ckpt, dtype="float16")
    with pytest.raises(ValueError, match=r"dtype must be one of .*'int8'"):
        minibert.classify(["ok"], model=small_ckpt, dtype="int8")
    model = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt)
    tok = minibert.AutoTokenizer.from_pretrained(small_ckpt)
    with pytest.raises(ValueError, match="dtype='float64' but the model passed is already loaded as float32"):
        minibert.pipeline("sentiment-analysis", model=model, tokenizer=tok, dtype="float64")


def test_loaded_model_and_tokenizer_objects_work(small_ckpt, clf):
    model = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt)
    tok = minibert.AutoTokenizer.from_pretrained(small_ckpt)
    got = minibert.pipeline("sentiment-analysis", model=model, tokenizer=tok, dtype="float32")(["a", "b c"])
    assert got == clf(["a", "b c"])
