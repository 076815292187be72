"""BERT checkpoints: loaded natively (keys renamed once at load onto the one encoder), dispatched by
model_type, with token types and the pooler; errors name BERT's own keys.

Parity of every BERT head at two sizes is in test_heads.py; here: the real all-MiniLM-L6-v2 weights as
a BertModel, token types doing what BERT's do, and the checks around loading.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from checkpoints import BACKENDS, MINILM_DIR
from checkpoints_heads import make_head_checkpoint, torch_outputs
from error_model import check_fp32
from safetensors.numpy import load_file, save_file

import minibert
from minibert.loading import bert_to_distilbert_key, checkpoint_key

SENTENCES = [
    "A man is eating food.",
    "A man is riding a horse.",
    "The new movie is awesome, I loved every minute of it!",
    "naïve café owners in Zürich serve crème brûlée for 12.50 CHF!!!",
]


@pytest.fixture(scope="module")
def bert_tiny(tmp_path_factory):
    return make_head_checkpoint(tmp_path_factory.mktemp("bert_tiny_seq"), "bert", "tiny", "sequence_classification",
                                seed=7)


@pytest.fixture
def bert_copy(bert_tiny, tmp_path):
    return shutil.copytree(bert_tiny, tmp_path / "copy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_minilm_loads_natively_as_bert(backend, record_error):
    """The sentence-transformers checkpoint (BertModel keys, an int64 position_ids buffer) with no conversion."""
    model = minibert.AutoModel.from_pretrained(MINILM_DIR, backend=backend)
    assert isinstance(model, minibert.BertModel) and isinstance(model.config, minibert.BertConfig)
    tok = minibert.AutoTokenizer.from_pretrained(MINILM_DIR)
    inputs = dict(tok(SENTENCES, padding=True, return_token_type_ids=True, return_tensors="np"))
    out = model(**inputs)
    want32 = torch_outputs(MINILM_DIR, "base", inputs)
    want64 = torch_outputs(MINILM_DIR, "base", inputs, dtype="float64")
    err, torch_err, _ = check_fp32(out.last_hidden_state, want32["last_hidden_state"], want64["last_hidden_state"],
                                   mask=inputs["attention_mask"])
    record_error("minilm-bert", "4x_sentences", backend, "last_hidden_state", err, torch_err)
    err, torch_err, _ = check_fp32(out.pooler_output, want32["pooler_output"], want64["pooler_output"])
    record_error("minilm-bert", "4x_sentences", backend, "pooler_output", err, torch_err)


def test_token_types_are_embedded(bert_tiny):
    """Type 1 on the second text changes the logits, as in transformers; leaving them out means all type 0."""
    model = minibert.AutoModelForSequenceClassification.from_pretrained(bert_tiny)
    assert isinstance(model, minibert.BertForSequenceClassification)
    tok = minibert.AutoTokenizer.from_pretrained(bert_tiny)
    enc = dict(tok(SENTENCES[:2], SENTENCES[2:], padding=True, return_token_type_ids=True, return_tensors="np"))
    assert enc["token_type_ids"].any()
    with_types = model(**enc).logits
    without = {k: v for k, v in enc.items() if k != "token_type_ids"}
    zeros = dict(enc, token_type_ids=np.zeros_like(enc["token_type_ids"]))
    np.testing.assert_array_equal(model(**without).logits, model(**zeros).logits)
    assert not np.allclose(with_types, model(**without).logits)
    for inputs in (enc, without):
        want32 = torch_outputs(bert_tiny, "sequence_classification", inputs)["logits"]
        want64 = torch_outputs(bert_tiny, "sequence_classification", inputs, dtype="float64")["logits"]
        check_fp32(model(**inputs).logits, want32, want64)


def test_key_renaming_round_trips():
    """Every BERT encoder key maps to a DistilBERT name and back (errors name the checkpoint's own key)."""
    cfg = minibert.BertConfig(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=48)
    keys = load_file(MINILM_DIR / "model.safetensors").keys()
    for key in keys:
        if key.endswith("position_ids"):
            continue
        name = bert_to_distilbert_key(key)
        assert not name.startswith("encoder."), key
        assert checkpoint_key(name, cfg, prefixed=False) == key
    assert checkpoint_key("vocab_projector.bias", cfg, True) == "cls.predictions.bias"
    want = "bert.encoder.layer.1.intermediate.dense.weight"
    assert checkpoint_key("transformer.layer.1.ffn.lin1.weight", cfg, True) == want


def test_unsupported_model_type_lists_supported(bert_copy):
    cfg = json.loads((bert_copy / "config.json").read_text())
    (bert_copy / "config.json").write_text(json.dumps(cfg | {"model_type": "roberta"}))
    for auto in (minibert.AutoModel, minibert.AutoModelForMaskedLM, minibert.AutoModelForSequenceClassification):
        supported = r"model_type 'roberta' is not supported; minibert runs \['bert', 'distilbert'\]"
        with pytest.raises(ValueError, match=supported):
            auto.from_pretrained(bert_copy)


def test_model_type_that_disagrees_with_the_tensors(bert_copy):
    cfg = json.loads((bert_copy / "config.json").read_text())
    (bert_copy / "config.json").write_text(json.dumps(cfg | {"model_type": "distilbert", "dim": 32, "n_heads": 2}))
    with pytest.raises(ValueError, match="look like a 'bert' checkpoint but config.json has model_type 'distilbert'"):
        minibert.AutoModel.from_pretrained(bert_copy)


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"hidden_size": 33}, "num_attention_heads=2 must divide hidden_size=33"),
        ({"hidden_act": "gelu_new"}, "hidden_act 'gelu_new' is not supported"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
        ({"layer_norm_eps": -1}, "layer_norm_eps must be a positive number"),
        ({"type_vocab_size": 0}, "type_vocab_size must be a positive integer"),
    ],
)
def test_bad_bert_config_is_named(bert_copy, edit, message):
    cfg = json.loads((bert_copy / "config.json").read_text())
    (bert_copy / "config.json").write_text(json.dumps(cfg | edit))
    with pytest.raises(ValueError, match=message):
        minibert.AutoModelForSequenceClassification.from_pretrained(bert_copy)


def test_missing_and_misshapen_keys_use_bert_names(bert_copy):
    path = bert_copy / "model.safetensors"
    tensors = load_file(path)
    del tensors["bert.encoder.layer.1.attention.self.value.bias"]
    save_file(tensors, path)
    with pytest.raises(ValueError, match=r"bert\.encoder\.layer\.1\.attention\.self\.value\.bias"):
        minibert.AutoModel.from_pretrained(bert_copy)
    tensors["bert.encoder.layer.1.attention.self.value.bias"] = np.zeros(31, np.float32)
    save_file(tensors, path)
    with pytest.raises(ValueError, match=r"tensor bert\.encoder\.layer\.1\.attention\.self\.value\.bias has shape"):
        minibert.AutoModel.from_pretrained(bert_copy)


def test_seq_classifier_without_pooler_is_refused(bert_copy):
    path = bert_copy / "model.safetensors"
    save_file({k: v for k, v in load_file(path).items() if "pooler" not in k}, path)
    with pytest.raises(ValueError, match=r"no sequence-classification head .* lacks bert\.pooler\.dense\.weight"):
        minibert.AutoModelForSequenceClassification.from_pretrained(bert_copy)
    assert minibert.AutoModel.from_pretrained(bert_copy)(np.array([[101, 102]])).pooler_output is None


@pytest.mark.parametrize(
    "types, message",
    [
        (np.array([[0, 0, 5]]), r"token_type_ids\[0, 2\] = 5 is outside \[0, 3\)"),
        (np.array([[0, 0]]), r"token_type_ids has shape \(1, 2\) but input_ids has shape \(1, 3\)"),
        (np.array([[0.0, 0.0, 1.0]]), "token_type_ids must be an integer array"),
    ],
)
def test_bad_token_type_ids_are_named(bert_tiny, types, message):
    model = minibert.AutoModelForSequenceClassification.from_pretrained(bert_tiny)
    with pytest.raises((ValueError, TypeError), match=message):
        model(np.array([[101, 2000, 102]]), token_type_ids=types)
