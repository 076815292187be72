"""minibert vs transformers/torch (eager attention, fp32) on local checkpoints, both backends.

Targets: last_hidden_state max|Δ| <= 1e-4 on real (unpadded) tokens, logits max|Δ| <= 1e-5.
Every measured max|Δ| is recorded and printed as a table at the end of the run (conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from checkpoints import BACKENDS, MINILM_DIR, long_review

HIDDEN_ATOL = 1e-4
LOGITS_ATOL = 1e-5

SHORT = "I've been waiting for a HuggingFace course my whole life."
MIXED = [
    "Hi!",
    "The film was long, and at times it dragged; still, the final act (a quiet, patient reunion between "
    "two estranged brothers) earned every minute of it, and I left the cinema grateful that someone still "
    "makes films this unhurried and this sincere about family, grief and forgiveness.",
    "Meh.",
    "naïve café owners in Zürich serve crème brûlée for 12.50 CHF!!!",
    "I hate this so much!",
    "Not bad at all, honestly: a solid seven out of ten.",
    "ok",
]
SHAPES = {
    "1x_short": [SHORT],
    f"{len(MIXED)}x_mixed_padded": MIXED,
    "1x512_truncated": [long_review(600)],
}


def encode(mb_tokenizer, ckpt, texts):
    return mb_tokenizer(ckpt)(texts, padding=True, truncation=True, return_tensors="np")


def max_delta(got, want, mask=None) -> float:
    diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    return float((diff if mask is None else diff[mask.astype(bool)]).max())


@pytest.mark.parametrize("shape", SHAPES)
def test_tokenizer_matches_transformers(any_ckpt, shape, mb_tokenizer, hf_tokenizer):
    _, ckpt = any_ckpt
    texts = SHAPES[shape]
    got = encode(mb_tokenizer, ckpt, texts)
    want = hf_tokenizer(ckpt)(texts, padding=True, truncation=True, return_tensors="np")
    assert {"input_ids", "attention_mask"} <= set(got)
    for key in got:  # transformers also returns token_type_ids (all 0) here; minibert may omit them
        assert key in want, f"minibert's tokenizer returned {key!r}, transformers' did not"
        assert got[key].dtype == np.int64, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    if shape == "1x512_truncated":
        assert got["input_ids"].shape == (1, 512)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_last_hidden_state(any_ckpt, shape, backend, mb_tokenizer, mb_model, torch_ref, record_delta):
    name, ckpt = any_ckpt
    enc = encode(mb_tokenizer, ckpt, SHAPES[shape])
    out = mb_model(ckpt, backend, head=False)(**enc).last_hidden_state
    ref = torch_ref(ckpt, False, enc["input_ids"], enc["attention_mask"])
    assert out.dtype == np.float32
    assert out.shape == ref.shape
    delta = max_delta(out, ref, mask=enc["attention_mask"])
    record_delta(name, shape, backend, "last_hidden_state", delta)
    assert delta <= HIDDEN_ATOL


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_logits(any_ckpt, shape, backend, mb_tokenizer, mb_model, torch_ref, record_delta):
    name, ckpt = any_ckpt
    enc = encode(mb_tokenizer, ckpt, SHAPES[shape])
    model = mb_model(ckpt, backend, head=True)
    out = model(**enc).logits
    ref = torch_ref(ckpt, True, enc["input_ids"], enc["attention_mask"])
    assert out.dtype == np.float32
    assert out.shape == ref.shape == (len(SHAPES[shape]), model.config.num_labels)
    delta = max_delta(out, ref)
    record_delta(name, shape, backend, "logits", delta)
    assert delta <= LOGITS_ATOL


def test_id2label_matches_transformers(any_ckpt, mb_model):
    import transformers

    _, ckpt = any_ckpt
    want = transformers.AutoConfig.from_pretrained(ckpt).id2label
    got = mb_model(ckpt, "numpy", head=True).config.id2label
    assert got == want
    assert all(isinstance(k, int) for k in got)


PROBE = "This sentence must score the same whatever it is batched with."
PARTNER_SETS = {
    "alone_then_longer": [PROBE, MIXED[1]],
    "last_behind_short": ["Hi!", "Meh.", PROBE],
    "middle": [MIXED[1], PROBE, "ok", MIXED[3], MIXED[5]],
    "duplicated": [PROBE, MIXED[4], PROBE],
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_logits_do_not_depend_on_batch(any_ckpt, backend, mb_tokenizer, mb_model, torch_ref, record_delta):
    name, ckpt = any_ckpt
    model = mb_model(ckpt, backend, head=True)
    alone_enc = encode(mb_tokenizer, ckpt, [PROBE])
    alone = model(**alone_enc).logits[0]
    ref = torch_ref(ckpt, True, alone_enc["input_ids"], alone_enc["attention_mask"])[0]
    assert max_delta(alone, ref) <= LOGITS_ATOL
    worst = 0.0
    for label, texts in PARTNER_SETS.items():
        enc = encode(mb_tokenizer, ckpt, texts)
        logits = model(**enc).logits
        for i, text in enumerate(texts):
            if text == PROBE:
                delta = max_delta(logits[i], alone)
                worst = max(worst, delta)
                assert delta <= LOGITS_ATOL, f"{label}: row {i} differs from the probe alone by {delta:.2e}"
    record_delta(name, "probe in 4 batches", backend, "logits vs alone", worst)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cls_only_attention_mask(any_ckpt, backend, mb_tokenizer, mb_model, torch_ref, record_delta):
    """Every token but [CLS] masked out: the softmax sees a single key; results must be finite and torch's."""
    name, ckpt = any_ckpt
    enc = dict(encode(mb_tokenizer, ckpt, [SHORT, "Hi!"]))
    mask = np.zeros_like(enc["attention_mask"])
    mask[:, 0] = 1
    enc["attention_mask"] = mask
    hidden = mb_model(ckpt, backend, head=False)(**enc).last_hidden_state
    logits = mb_model(ckpt, backend, head=True)(**enc).logits
    assert np.isfinite(hidden).all() and np.isfinite(logits).all()
    hidden_delta = max_delta(hidden, torch_ref(ckpt, False, enc["input_ids"], mask), mask=mask)
    logits_delta = max_delta(logits, torch_ref(ckpt, True, enc["input_ids"], mask))
    record_delta(name, "cls-only mask", backend, "last_hidden_state", hidden_delta)
    record_delta(name, "cls-only mask", backend, "logits", logits_delta)
    assert hidden_delta <= HIDDEN_ATOL
    assert logits_delta <= LOGITS_ATOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_string(backend, small_ckpt, mb_tokenizer, hf_tokenizer, mb_model, torch_ref):
    enc = encode(mb_tokenizer, small_ckpt, ["", "Hi!"])
    want = hf_tokenizer(small_ckpt)(["", "Hi!"], padding=True, truncation=True, return_tensors="np")
    np.testing.assert_array_equal(enc["input_ids"], want["input_ids"])
    logits = mb_model(small_ckpt, backend, head=True)(**enc).logits
    assert max_delta(logits, torch_ref(small_ckpt, True, enc["input_ids"], enc["attention_mask"])) <= LOGITS_ATOL


def test_softmax_matches_torch():
    import torch

    import minibert

    x = np.array([[-4.27, 4.6784, 0.0], [1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    want = torch.softmax(torch.from_numpy(x), dim=-1).numpy()
    got = minibert.softmax(x, axis=-1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    np.testing.assert_allclose(minibert.softmax(x.T, axis=0), want.T, rtol=0, atol=1e-7)


def test_minilm_mapping_is_exact(minilm_ckpt, hf_tokenizer, torch_ref, record_delta):
    """The mapped DistilBERT is the same function as all-MiniLM-L6-v2's BertModel with token_type_ids = 0."""
    import torch
    import transformers

    bert = transformers.BertModel.from_pretrained(MINILM_DIR, attn_implementation="eager", dtype=torch.float32)
    enc = hf_tokenizer(minilm_ckpt)([SHORT, *MIXED], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        want = bert.eval()(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            token_type_ids=torch.zeros_like(enc["input_ids"]),
        ).last_hidden_state.numpy()
    got = torch_ref(minilm_ckpt, False, enc["input_ids"], enc["attention_mask"])
    delta = max_delta(got, want, mask=enc["attention_mask"].numpy())
    record_delta("minilm_ckpt", f"{len(MIXED) + 1}x_mixed_padded", "torch", "BertModel vs mapped", delta)
    assert np.abs(want).max() > 1.0  # real weights: the comparison is not between near-zero tensors
    assert delta <= 1e-5
