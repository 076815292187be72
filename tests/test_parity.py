"""minibert vs transformers/torch (eager attention) on local checkpoints, both backends, both dtypes.

The truth is transformers' `model.double()`. Float32 results are held to the float32 error model
(error_model.py): minibert-fp32's max error against float64 must be at most 2x torch-fp32's, plus a
floor of a few ulps of the tensor's scale. minibert's float64 mode must agree with torch's to 1e-10.
Hidden states are compared on real (unpadded) tokens. Every measured error and its ratio to torch's
is printed as a table at the end of the run (conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from checkpoints import BACKENDS, MINILM_DIR, long_review
from error_model import check_fp32, fp32_bound, max_abs_error

FLOAT64_ATOL = 1e-10  # float64 mode vs transformers' model.double(): both exact to ~1e-15 of O(10) values

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


POOL = [SHORT, *MIXED]  # texts whose logits pool torch's error for small outputs (error_model's module doc)


_POOLS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def logits_pool(ckpt, mb_tokenizer, torch_ref):
    """(torch float32, torch float64) logits of the checkpoint on POOL, one text at a time and batched."""
    if str(ckpt) in _POOLS:
        return _POOLS[str(ckpt)]
    ref32, ref64 = [], []
    for texts in [[t] for t in POOL] + [POOL]:
        enc = encode(mb_tokenizer, ckpt, texts)
        ref32.append(torch_ref(ckpt, True, enc["input_ids"], enc["attention_mask"]))
        ref64.append(torch_ref(ckpt, True, enc["input_ids"], enc["attention_mask"], dtype="float64"))
    _POOLS[str(ckpt)] = np.concatenate(ref32), np.concatenate(ref64)
    return _POOLS[str(ckpt)]


def check_against_torch(name, shape, backend, quantity, got, ckpt, head, ids, mask, torch_ref, record_error,
                        pool=None):
    """got (minibert float32) vs torch float32, both against torch float64; records and asserts the error model."""
    ref32 = torch_ref(ckpt, head, ids, mask)
    ref64 = torch_ref(ckpt, head, ids, mask, dtype="float64")
    assert got.dtype == np.float32 and got.shape == ref32.shape
    assert np.isfinite(got).all()
    real = None if head else mask  # hidden states: real tokens only (padded positions are not outputs)
    err, torch_err, _ = check_fp32(got, ref32, ref64, mask=real, pool=pool)
    record_error(name, shape, backend, quantity, err, torch_err)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_last_hidden_state(any_ckpt, shape, backend, mb_tokenizer, mb_model, torch_ref, record_error):
    name, ckpt = any_ckpt
    enc = encode(mb_tokenizer, ckpt, SHAPES[shape])
    out = mb_model(ckpt, backend, head=False)(**enc).last_hidden_state
    ids, mask = enc["input_ids"], enc["attention_mask"]
    check_against_torch(name, shape, backend, "last_hidden_state", out, ckpt, False, ids, mask, torch_ref, record_error)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_logits(any_ckpt, shape, backend, mb_tokenizer, mb_model, torch_ref, record_error):
    name, ckpt = any_ckpt
    enc = encode(mb_tokenizer, ckpt, SHAPES[shape])
    model = mb_model(ckpt, backend, head=True)
    out = model(**enc).logits
    assert out.shape == (len(SHAPES[shape]), model.config.num_labels)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    check_against_torch(name, shape, backend, "logits", out, ckpt, True, ids, mask, torch_ref, record_error,
                        pool=logits_pool(ckpt, mb_tokenizer, torch_ref))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["1x_short", f"{len(MIXED)}x_mixed_padded"])
def test_loud_logits(base_loud_ckpt, shape, backend, mb_tokenizer, mb_model, torch_ref, record_error):
    """A full-size model whose logits reach +-8..12: a fixed atol would have to grow with them; the model does not."""
    enc = encode(mb_tokenizer, base_loud_ckpt, SHAPES[shape])
    out = mb_model(base_loud_ckpt, backend, head=True)(**enc).logits
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if shape != "1x_short":
        assert np.abs(torch_ref(base_loud_ckpt, True, ids, mask, dtype="float64")).max() >= 8
    check_against_torch("base_loud_ckpt", shape, backend, "logits", out, base_loud_ckpt, True, ids, mask,
                        torch_ref, record_error, pool=logits_pool(base_loud_ckpt, mb_tokenizer, torch_ref))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["1x_short", f"{len(MIXED)}x_mixed_padded"])
def test_float64_mode_equals_torch_double(any_ckpt, shape, backend, mb_tokenizer, mb_model, torch_ref):
    name, ckpt = any_ckpt
    enc = encode(mb_tokenizer, ckpt, SHAPES[shape])
    ids, mask = enc["input_ids"], enc["attention_mask"]
    hidden = mb_model(ckpt, backend, head=False, dtype="float64")(**enc).last_hidden_state
    logits = mb_model(ckpt, backend, head=True, dtype="float64")(**enc).logits
    assert hidden.dtype == logits.dtype == np.float64
    assert max_abs_error(hidden, torch_ref(ckpt, False, ids, mask, dtype="float64"), mask) <= FLOAT64_ATOL
    assert max_abs_error(logits, torch_ref(ckpt, True, ids, mask, dtype="float64")) <= FLOAT64_ATOL


def test_float64_mode_on_512_tokens(base_ckpt, mb_tokenizer, mb_model, torch_ref):
    enc = encode(mb_tokenizer, base_ckpt, SHAPES["1x512_truncated"])
    logits = mb_model(base_ckpt, "numba", head=True, dtype="float64")(**enc).logits
    want = torch_ref(base_ckpt, True, enc["input_ids"], enc["attention_mask"], dtype="float64")
    assert max_abs_error(logits, want) <= FLOAT64_ATOL


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
def test_logits_do_not_depend_on_batch(any_ckpt, backend, mb_tokenizer, mb_model, torch_ref, record_error):
    """The probe's exact (float64) logits are the same in every batch, and minibert's float32 logits for it stay
    within the error model of them wherever it sits. The bound is torch's float32 error over every row of the same
    four batches (the model bounds a tensor's max error; a row of 2 logits is too small a sample of it)."""
    name, ckpt = any_ckpt
    model = mb_model(ckpt, backend, head=True)
    alone = encode(mb_tokenizer, ckpt, [PROBE])
    truth = torch_ref(ckpt, True, alone["input_ids"], alone["attention_mask"], dtype="float64")[0]
    probe_rows, ref32_all, ref64_all = [], [], []
    for label, texts in PARTNER_SETS.items():
        enc = encode(mb_tokenizer, ckpt, texts)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        logits = model(**enc).logits
        ref64 = torch_ref(ckpt, True, ids, mask, dtype="float64")
        ref32_all.append(torch_ref(ckpt, True, ids, mask))
        ref64_all.append(ref64)
        for i, text in enumerate(texts):
            if text == PROBE:
                assert max_abs_error(ref64[i], truth) <= FLOAT64_ATOL, f"{label}: padding changed the exact result"
                probe_rows.append((label, i, logits[i]))
    pool32, pool64 = logits_pool(ckpt, mb_tokenizer, torch_ref)
    bound = fp32_bound(np.concatenate([*ref32_all, pool32]), np.concatenate([*ref64_all, pool64]))
    for label, i, row in probe_rows:
        err = max_abs_error(row, truth)
        assert err <= bound, f"{label}: row {i} is {err:.2e} from the exact logits; bound {bound:.2e}"
    worst = max(max_abs_error(row, truth) for *_, row in probe_rows)
    record_error(name, "probe in 4 batches", backend, "logits", worst,
                 max_abs_error(np.concatenate(ref32_all), np.concatenate(ref64_all)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cls_only_attention_mask(any_ckpt, backend, mb_tokenizer, mb_model, torch_ref, record_error):
    """Every token but [CLS] masked out: the softmax sees a single key; results must be finite and torch's."""
    name, ckpt = any_ckpt
    enc = dict(encode(mb_tokenizer, ckpt, [SHORT, "Hi!"]))
    mask = np.zeros_like(enc["attention_mask"])
    mask[:, 0] = 1
    enc["attention_mask"] = mask
    ids = enc["input_ids"]
    hidden = mb_model(ckpt, backend, head=False)(**enc).last_hidden_state
    logits = mb_model(ckpt, backend, head=True)(**enc).logits
    shape = "cls-only mask"
    check_against_torch(name, shape, backend, "last_hidden_state", hidden, ckpt, False, ids, mask, torch_ref,
                        record_error)
    check_against_torch(name, shape, backend, "logits", logits, ckpt, True, ids, mask, torch_ref, record_error,
                        pool=logits_pool(ckpt, mb_tokenizer, torch_ref))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_string(backend, small_ckpt, mb_tokenizer, hf_tokenizer, mb_model, torch_ref, record_error):
    enc = encode(mb_tokenizer, small_ckpt, ["", "Hi!"])
    want = hf_tokenizer(small_ckpt)(["", "Hi!"], padding=True, truncation=True, return_tensors="np")
    np.testing.assert_array_equal(enc["input_ids"], want["input_ids"])
    logits = mb_model(small_ckpt, backend, head=True)(**enc).logits
    check_against_torch("small_ckpt", "empty string", backend, "logits", logits, small_ckpt, True,
                        enc["input_ids"], enc["attention_mask"], torch_ref, record_error,
                        pool=logits_pool(small_ckpt, mb_tokenizer, torch_ref))


def test_softmax_matches_the_exact_softmax():
    """minibert.softmax in float32 is within the rounding of its steps of the float64 softmax, like torch's."""
    import torch
    from error_model import U32

    import minibert

    x = np.array([[-4.27, 4.6784, 0.0], [1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    exact = minibert.softmax(x.astype(np.float64), axis=-1)
    # x - max is rounded (relative error u, so exp's relative error u |x - max|), then exp, sum and division
    bound = U32 * (np.abs(x.astype(np.float64) - x.max(-1, keepdims=True)) + 3 + np.log2(x.shape[-1])) * exact
    bound += float(np.finfo(np.float32).tiny)
    got = minibert.softmax(x, axis=-1)
    assert got.dtype == np.float32
    assert (np.abs(got - exact) <= bound).all()
    assert (np.abs(minibert.softmax(x.T, axis=0) - exact.T) <= bound.T).all()
    torch64 = torch.softmax(torch.from_numpy(x.astype(np.float64)), dim=-1).numpy()
    assert max_abs_error(exact, torch64) <= 1e-15  # the same definition as torch's


def test_minilm_mapping_is_exact(minilm_ckpt, hf_tokenizer, torch_ref, record_error):
    """The mapped DistilBERT is the same function as all-MiniLM-L6-v2's BertModel with token_type_ids = 0: run in
    float32 it is as close to BERT's float64 output as BERT's own float32 run is (the mapping only adds one float32
    rounding, of position + token-type embedding)."""
    import torch
    import transformers

    bert = transformers.BertModel.from_pretrained(MINILM_DIR, attn_implementation="eager", dtype=torch.float32).eval()
    enc = hf_tokenizer(minilm_ckpt)([SHORT, *MIXED], padding=True, truncation=True, return_tensors="pt")
    types = torch.zeros_like(enc["input_ids"])
    with torch.no_grad():
        want32 = bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=types)
        want64 = bert.double()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=types)
    want32, want64 = want32.last_hidden_state.numpy(), want64.last_hidden_state.numpy()
    mask = enc["attention_mask"].numpy()
    got = torch_ref(minilm_ckpt, False, enc["input_ids"], enc["attention_mask"])
    assert np.abs(want64).max() > 1.0  # real weights: the comparison is not between near-zero tensors
    err, bert_err, _ = check_fp32(got, want32, want64, mask=mask)
    record_error("minilm_ckpt", f"{len(MIXED) + 1}x_mixed_padded", "torch-mapped", "vs BertModel", err, bert_err)
