"""output_hidden_states / output_attentions: transformers' fields, layout and indexing, and parity on padded batches.

hidden_states is the embeddings' output plus one [B, T, C] per block; attentions is one [B, H, T, T] per block
(query rows, key columns). Parity is on the real part only: hidden states of real tokens, attention rows of
real queries over real keys; a padded key must get exactly 0 weight from every query, as in transformers.
float32 on the error model (error_model.py), float64 mode to FLOAT64_ATOL of transformers' model.double().
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache

import numpy as np
import pytest
import torch
from checkpoints import BACKENDS
from conftest import _hf_tokenizer, _torch_model
from error_model import check_fp32, max_abs_error
from test_parity import FLOAT64_ATOL

# Different lengths, so the batch is padded; the last is one token plus [CLS]/[SEP].
TEXTS = [
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "ok",
    "The plot was thin, but the acting and the music carried it.",
]


def torch_insides(ckpt, head: bool, input_ids, attention_mask, dtype: str = "float32") -> dict:
    """transformers (eager) on the same inputs: its output fields as NumPy arrays, plus for a classification model
    the classifier's input ("classifier_input", captured with a forward hook): DistilBERT's pre_classifier output
    after the ReLU, BERT's pooler output (tanh included)."""
    model = _torch_model(str(ckpt), head, dtype)
    captured = {}
    hook = None
    if head:
        distil = hasattr(model, "pre_classifier")
        layer = model.pre_classifier if distil else model.bert.pooler
        hook = layer.register_forward_hook(lambda m, i, o: captured.setdefault("pre", torch.relu(o) if distil else o))
    try:
        with torch.no_grad():
            out = model(
                input_ids=torch.as_tensor(input_ids), attention_mask=torch.as_tensor(attention_mask),
                output_hidden_states=True, output_attentions=True,
            )
    finally:
        if hook is not None:
            hook.remove()
    result = {
        "hidden_states": [h.numpy() for h in out.hidden_states],
        "attentions": [a.numpy() for a in out.attentions],
        "keys": list(out.keys()),
    }
    if head:
        result["logits"] = out.logits.numpy()
        result["classifier_input"] = captured["pre"].numpy()
    else:
        result["last_hidden_state"] = out.last_hidden_state.numpy()
    return result


@cache
def torch_texts(ckpt, head: bool, dtype: str) -> dict:
    """torch_insides on TEXTS, padded (cached: every backend compares against the same reference)."""
    enc = _hf_tokenizer(str(ckpt))(TEXTS, padding=True, return_tensors="np")
    return torch_insides(ckpt, head, enc["input_ids"], enc["attention_mask"], dtype) | {"input_ids": enc["input_ids"]}


def real_attention(mask: np.ndarray, n_heads: int) -> np.ndarray:
    # [B, T] -> [B, H, T, T]: True where both the query (row) and the key (column) are real tokens
    m = mask.astype(bool)
    return np.broadcast_to(m[:, None, :, None] & m[:, None, None, :], (m.shape[0], n_heads, m.shape[1], m.shape[1]))


@pytest.fixture(params=["small_ckpt", "minilm_ckpt"])
def ckpt(request):
    return request.param, request.getfixturevalue(request.param)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("head", [False, True], ids=["DistilBertModel", "ForSequenceClassification"])
def test_fields_layout_and_indexing_as_transformers(small_ckpt, backend, head, mb_tokenizer, mb_model):
    enc = mb_tokenizer(small_ckpt)(TEXTS, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    cfg = mb_model(small_ckpt, backend, head).config
    B, T = ids.shape
    for hs in (False, True):
        for att in (False, True):
            out = mb_model(small_ckpt, backend, head)(ids, mask, output_hidden_states=hs, output_attentions=att)
            model = _torch_model(str(small_ckpt), head)
            with torch.no_grad():
                ref = model(
                    input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask),
                    output_hidden_states=hs, output_attentions=att,
                )
            # Same field names in the same order, None fields skipped, as ModelOutput.keys() gives them
            assert [f.name for f in fields(out) if getattr(out, f.name) is not None] == list(ref.keys())
            # Integer indexing skips None fields as ModelOutput does; string indexing is attribute access
            first = "logits" if head else "last_hidden_state"
            assert out[0] is out[first] is getattr(out, first)
            for i, key in enumerate(ref.keys()):
                assert out[i] is getattr(out, key)
                assert isinstance(out[key], tuple) == isinstance(ref[key], tuple)  # hidden_states/attentions
            with pytest.raises(IndexError):
                out[len(ref.keys())]
            if not hs:
                assert out.hidden_states is None
            else:
                assert isinstance(out.hidden_states, tuple) and len(out.hidden_states) == cfg.n_layers + 1
                assert all(h.shape == (B, T, cfg.dim) for h in out.hidden_states)
                assert [h.shape for h in out.hidden_states] == [tuple(h.shape) for h in ref.hidden_states]
            if not att:
                assert out.attentions is None
            else:
                assert isinstance(out.attentions, tuple) and len(out.attentions) == cfg.n_layers
                assert all(a.shape == (B, cfg.n_heads, T, T) for a in out.attentions)
                assert [a.shape for a in out.attentions] == [tuple(a.shape) for a in ref.attentions]


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_hidden_state_is_the_last_hidden_states_entry(small_ckpt, backend, mb_tokenizer, mb_model):
    enc = mb_tokenizer(small_ckpt)(TEXTS, padding=True, return_tensors="np")
    base = mb_model(small_ckpt, backend, False)(**enc, output_hidden_states=True)
    clf = mb_model(small_ckpt, backend, True)(**enc, output_hidden_states=True, output_attentions=True)
    plain = mb_model(small_ckpt, backend, True)(**enc)
    np.testing.assert_array_equal(base.hidden_states[-1], base.last_hidden_state)
    # Asking for the insides changes nothing in the result beyond float32 rounding: the numba backend's fast path
    # keeps no insides and hands such calls to the reference path, so the two logits are held to the error model.
    if backend == "numpy":
        np.testing.assert_array_equal(clf.logits, plain.logits)
    else:
        t32, t64 = torch_texts(small_ckpt, True, "float32"), torch_texts(small_ckpt, True, "float64")
        check_fp32(plain.logits, t32["logits"], t64["logits"])
        check_fp32(clf.logits, t32["logits"], t64["logits"])
    # the head model's insides are its encoder's
    for a, b in zip(clf.hidden_states, base.hidden_states, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("head", [False, True], ids=["DistilBertModel", "ForSequenceClassification"])
def test_float32_insides_match_transformers_on_padded_batch(ckpt, backend, head, mb_tokenizer, mb_model,
                                                            record_error):
    name, path = ckpt
    enc = mb_tokenizer(path)(TEXTS, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert (mask == 0).any(), "the batch must be padded"
    out = mb_model(path, backend, head)(ids, mask, output_hidden_states=True, output_attentions=True)
    t32, t64 = torch_texts(path, head, "float32"), torch_texts(path, head, "float64")
    np.testing.assert_array_equal(ids, t64["input_ids"])  # the same inputs on both sides
    H = out.attentions[0].shape[1]
    real = real_attention(mask, H)
    shape = f"{ids.shape[0]}x{ids.shape[1]} padded"
    for i, (got, want, ref) in enumerate(zip(out.hidden_states, t32["hidden_states"], t64["hidden_states"],
                                             strict=True)):
        assert got.dtype == np.float32
        err, torch_err, _ = check_fp32(got, want, ref, mask)
        record_error(name, shape, backend, f"hidden_states[{i}]", err, torch_err)
    for i, (got, want, ref) in enumerate(zip(out.attentions, t32["attentions"], t64["attentions"], strict=True)):
        assert got.dtype == np.float32
        err, torch_err, _ = check_fp32(got, want, ref, real)
        record_error(name, shape, backend, f"attentions[{i}]", err, torch_err)
        # Padding is invisible: every query (real or padded) gives a padded key exactly 0 weight, as torch does
        pad_keys = np.broadcast_to(~mask.astype(bool)[:, None, None, :], got.shape)
        assert (got[pad_keys] == 0).all() and (want[pad_keys] == 0).all()
        # Each real query's weights over the real keys sum to 1 within the rounding of T float32 additions
        sums = np.where(real, got.astype(np.float64), 0).sum(-1)[real[..., 0]]
        assert np.abs(sums - 1).max() <= 4 * ids.shape[1] * np.finfo(np.float32).eps
    if head:
        check_fp32(out.logits, t32["logits"], t64["logits"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("head", [False, True], ids=["DistilBertModel", "ForSequenceClassification"])
def test_float64_insides_equal_transformers_double(ckpt, backend, head, mb_tokenizer, mb_model):
    _, path = ckpt
    enc = mb_tokenizer(path)(TEXTS, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    out = mb_model(path, backend, head, "float64")(ids, mask, output_hidden_states=True, output_attentions=True)
    t64 = torch_texts(path, head, "float64")
    np.testing.assert_array_equal(ids, t64["input_ids"])
    real = real_attention(mask, out.attentions[0].shape[1])
    for got, ref in zip(out.hidden_states, t64["hidden_states"], strict=True):
        assert got.dtype == np.float64
        assert max_abs_error(got, ref, mask) <= FLOAT64_ATOL
    for got, ref in zip(out.attentions, t64["attentions"], strict=True):
        assert got.dtype == np.float64
        assert max_abs_error(got, ref, real) <= FLOAT64_ATOL
        assert (got[np.broadcast_to(~mask.astype(bool)[:, None, None, :], got.shape)] == 0).all()
