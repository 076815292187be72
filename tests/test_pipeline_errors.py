"""Bad pipeline input gives a clear TypeError/ValueError naming the item, never a deep traceback."""

import pytest

import minibert


@pytest.fixture(scope="module")
def clf(small_ckpt):
    return minibert.pipeline("sentiment-analysis", model=small_ckpt)


@pytest.mark.parametrize(
    "inputs, kwargs, error, message",
    [
        (123, {}, TypeError, "inputs must be a str"),
        (b"bytes", {}, TypeError, "inputs must be a str"),
        (["fine", None], {}, TypeError, r"inputs\[1\] is NoneType"),
        (["fine", 3.5], {}, TypeError, r"inputs\[1\] is float"),
        ([{"text": "a"}], {}, ValueError, r"inputs\[0\] must be \{'text': str, 'text_pair': str\}"),
        (["ok"], {"top_k": 0}, ValueError, "top_k must be a positive int or None"),
        (["ok"], {"top_k": "2"}, ValueError, "top_k must be a positive int or None"),
        (["ok"], {"function_to_apply": "relu"}, ValueError, "function_to_apply must be one of"),
        (["ok"], {"batch_size": 0}, ValueError, "batch_size must be a positive int"),
    ],
)
def test_bad_pipeline_input_is_named(clf, inputs, kwargs, error, message):
    with pytest.raises(error, match=message):
        clf(inputs, **kwargs)


def test_empty_list_gives_empty_result(clf):
    assert clf([]) == []


def test_unknown_task_and_model_type(small_ckpt):
    with pytest.raises(ValueError, match="supports the tasks"):
        minibert.pipeline("summarization", model=small_ckpt)
    with pytest.raises(TypeError, match="model must be a hub id"):
        minibert.pipeline("sentiment-analysis", model=42)
    model = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt)
    with pytest.raises(ValueError, match="pass tokenizer="):
        minibert.pipeline("sentiment-analysis", model=model)


def test_loaded_model_and_tokenizer_objects_work(small_ckpt, clf):
    model = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt)
    tok = minibert.AutoTokenizer.from_pretrained(small_ckpt)
    assert minibert.pipeline("sentiment-analysis", model=model, tokenizer=tok)(["a", "b c"]) == clf(["a", "b c"])
