"""The fast path (minibert/fast.py) against model.py's reference path and against transformers, on the float32
error model (error_model.py: float64 truth = torch `model.double()`, error <= 2x torch-fp32's + floor), and its
fused kernels (fast_kernels.py) against their definitions, the NumPy references of kernels.py.

Shapes: a padded batch of mixed lengths, an unpadded (fully packed) batch, [CLS]-only logits, 1x512, a mask that
is zero except [CLS], a sequence with no real token at all, left padding, and a batch of one token.
"""

from __future__ import annotations

import types
from functools import cache

import numba
import numba.extending
import numpy as np
import pytest
from error_model import LAMBDA, U32, check_fp32, max_abs_error
from test_kernels import gelu_bound, layer_norm_bound, softmax_bound

from minibert import fast, fast_kernels, kernels
from minibert.model import classification_head

U64 = float(np.finfo(np.float64).eps) / 2
FLOAT64_ATOL = 1e-10  # float64 fast path vs transformers' model.double(), as in test_parity.py

rng = np.random.default_rng(0)


def randn(*shape, scale=1.0, dtype=np.float32):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.fixture(autouse=True)
def parallel_twins_on_small_inputs(monkeypatch):
    # fast_kernels runs its parallel twins only on inputs of millions of elements (where they pay); here every
    # call with parallel=True (or threads on) runs them, so the test-sized inputs check both compilations
    monkeypatch.setattr(fast_kernels, "PARALLEL_MIN_ELEMENTS", 0)


# --- fused kernels vs their definitions ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel", [False, True])
def test_embed_layer_norm(dtype, parallel):
    V, P, C, N = 50, 40, 96, 700
    word, pos, types = randn(V, C, dtype=dtype), randn(P, C, dtype=dtype), randn(2, C, dtype=dtype)
    w, b = 1 + randn(C, scale=0.1, dtype=dtype), randn(C, scale=0.1, dtype=dtype)
    ids, positions, tt = rng.integers(0, V, N), rng.integers(0, P, N), rng.integers(0, 2, N)
    got = fast_kernels.embed_layer_norm(ids, positions, tt, word, pos, types, w, b, 1e-12,
                                        np.empty((C, N), dtype), parallel).T  # written feature-major [C, N]
    x = (word[ids] + types[tt]) + pos[positions]  # model.py's embeddings, in its dtype and order
    exact = kernels.layer_norm_numpy(*(a.astype(np.float64) for a in (x, w, b)), 1e-12)
    bound = layer_norm_bound(x, w, b, exact, U32 if dtype == np.float32 else U64)
    assert got.dtype == dtype
    assert (np.abs(got - exact) <= bound).all(), max_abs_error(got, exact)


@pytest.mark.parametrize("parallel", [False, True])
def test_bias_gelu(parallel):
    h, bias = randn(256, 300, scale=3.0), randn(256)  # feature-major [F, N]: bias[j] belongs to row j
    h[:4, 0] = [-40.0, 40.0, 0.0, -5.5]
    x = h + bias[:, None]  # the float32 sum model.py's linear rounds, then GELU
    exact = kernels.gelu_numpy(x.astype(np.float64))
    got = fast_kernels.bias_activation(h.copy(), bias, "gelu", parallel)
    assert (np.abs(got - exact) <= gelu_bound(x, exact, rational_erf=True)).all()
    h64, b64 = h.astype(np.float64), bias.astype(np.float64)
    x64 = h64 + b64[:, None]
    exact64 = kernels.gelu_numpy(x64)
    got64 = fast_kernels.bias_activation(h64.copy(), b64, "gelu", parallel)  # libm erf, float64 accuracy
    assert got64.dtype == np.float64
    assert (np.abs(got64 - exact64) <= gelu_bound(x64, exact64, False, U64)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel", [False, True])
def test_bias_add_is_exact(dtype, parallel):
    h, bias = randn(96, 300, dtype=dtype), randn(96, dtype=dtype)
    block = np.concatenate([h, h])[:96]  # a row block of a taller matrix, as qkv_lin passes
    got = fast_kernels.bias_add(block, bias, parallel)
    assert got is block and np.array_equal(got, h + bias[:, None])  # one rounding, as NumPy's


def test_bias_relu_is_exact():
    h, bias = randn(256, 300), randn(256)
    np.testing.assert_array_equal(fast_kernels.bias_activation(h.copy(), bias, "relu"), kernels.relu(h + bias[:, None]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("N", [1, 200, 300])  # one column; blocks of COLUMNS tokens with a short last one
def test_bias_residual_layer_norm(dtype, parallel, N):
    C = 768
    h, bias = randn(C, N, dtype=dtype), randn(C, scale=0.1, dtype=dtype)  # feature-major [C, N]: a token per column
    residual = randn(C, N, scale=3.0, dtype=dtype) + dtype(2.0)
    w, b = 1 + randn(C, scale=0.1, dtype=dtype), randn(C, scale=0.1, dtype=dtype)
    x = (h + bias[:, None]).astype(np.float64) + residual  # the kernel's LayerNorm input: h + bias rounded, + residual
    exact = kernels.layer_norm_numpy(x.T, w.astype(np.float64), b.astype(np.float64), 1e-12).T
    # the definition rounds (h + bias) + residual to the dtype once more: one more u of |x| relative to sigma
    u = U32 if dtype == np.float32 else U64
    xt, sigma = x.T, x.T.std(-1, keepdims=True)
    bound = layer_norm_bound(xt, w, b, exact.T, u) + 2 * u * np.abs(xt) * np.abs(w) / sigma
    # The kernel sums each column sequentially, down the rows (not pairwise): Higham-Mary's LAMBDA sqrt(C) in place of
    # log2(C). Its variance is one pass over d = x - x[0]: sum(d^2)/C - mean(d)^2 cancels, so that sum's relative
    # error grows by 1 + (x[0] - mean)^2 / sigma^2 (at most C: no value is more than sqrt(C - 1) sigma from the
    # mean). Both terms are far below float32's u; they show only against float64's.
    bound *= LAMBDA * np.sqrt(C) / (np.log2(C) + 4)
    shift = (xt[:, :1] - xt.mean(-1, keepdims=True)) ** 2 / sigma**2
    bound = (bound + LAMBDA * np.sqrt(C) * U64 * np.abs(w) * np.abs(xt - xt.mean(-1, keepdims=True)) / sigma * shift).T
    out = np.empty_like(residual)  # as fast.py calls it: into another matrix
    got = fast_kernels.bias_residual_layer_norm(h, bias, residual, w, b, 1e-12, out, parallel)
    assert got is out and got.dtype == dtype
    assert (np.abs(got - exact) <= bound).all(), max_abs_error(got, exact)
    again = residual.copy()  # in place (out is residual): slower (scalar loops, which may round the last bit of
    fast_kernels.bias_residual_layer_norm(h, bias, again, w, b, 1e-12, again, parallel)  # an FMA differently), as right
    assert (np.abs(again - exact) <= bound).all(), max_abs_error(again, exact)


def test_exp32_over_its_range():
    # the softmax's float32 exp (Cephes' expf) on every z it can get: 0 down to far below float32's normal range.
    # Cephes documents a peak relative error of 1.7e-7 on its domain; below -87.6 the kernel returns 0, off by
    # less than float32's smallest normal number
    z = np.concatenate([-np.linspace(0, 120, 2_000_001), -np.logspace(-8, 0, 1001)]).astype(np.float32)
    got = np.empty_like(z)
    _exp32_each(z, got)
    exact = np.exp(z.astype(np.float64))
    assert (np.abs(got - exact) <= 1.7e-7 * exact + np.finfo(np.float32).tiny).all()
    assert got[0] == 1.0 and (got[z < -87.6] == 0).all()


@numba.njit
def _exp32_each(z, out):
    for i in range(len(z)):
        out[i] = fast_kernels._exp32(z[i])


def test_row_max32_orders_floats_by_their_bits():
    # the softmax's row max compares int32 keys of the float bits: every sign and edge value must keep its order
    f32 = np.finfo(np.float32)
    rows = [randn(37), -np.abs(randn(37)), np.abs(randn(37)), [-0.0, 0.0], [0.0, -0.0], [-0.0], [f32.min, -np.inf],
            [-np.inf], [f32.max, np.inf, 1.0], [f32.smallest_subnormal, 0.0], [-f32.smallest_subnormal, -0.0],
            [-3.0, -2.5, -7.0], [f32.min, f32.min]]
    for row in rows:
        row = np.asarray(row, np.float32)
        assert _row_max32_of(row) == row.max(), row  # +0 and -0 compare equal: the softmax only subtracts it


@numba.njit
def _row_max32_of(row):
    return fast_kernels._row_max32(row)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K", [1, 7, 130])
@pytest.mark.parametrize("spread", [5.0, 500.0])  # 500: scaled scores far apart, many weights underflow to 0
def test_attention_softmax(dtype, K, spread):
    G, H, Sq = 2, 4, 65
    scores = randn(G, H, Sq, K, scale=spread, dtype=dtype)
    u = U32 if dtype == np.float32 else U64
    for key_bias, mask in ((0.0, np.ones((G, K), np.int64)), (np.finfo(dtype).min, np.zeros((G, K), np.int64))):
        mask_bias = np.where(mask == 1, 0, np.finfo(dtype).min).astype(dtype)
        exact = kernels.attention_softmax_numpy(scores.astype(np.float64), 0.125, mask_bias.astype(np.float64))
        for parallel in (False, True):
            got = fast_kernels.attention_softmax(scores.copy(), 0.125, key_bias, parallel)
            assert got.dtype == dtype and np.isfinite(got).all()
            assert (np.abs(got - exact) <= softmax_bound(scores, 0.125, mask_bias, exact, u)).all()
        if key_bias:  # every key masked: uniform weights, as transformers gives such a row
            np.testing.assert_allclose(got, 1.0 / K, rtol=4 * u)
    transposed = scores.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)  # not C-contiguous: still right
    got = fast_kernels.attention_softmax(transposed, 0.125, 0.0)
    exact = kernels.attention_softmax_numpy(scores.astype(np.float64), 0.125, np.zeros((G, K)))
    assert (np.abs(got - exact) <= softmax_bound(scores, 0.125, np.zeros((G, K), dtype), exact, u)).all()


@numba.extending.intrinsic
def _no_op(typingctx):  # stands in for fast_kernels._wide_vectors: the kernel as LLVM would vectorise it by default
    return numba.types.void(), lambda context, builder, signature, args: context.get_dummy_value()


@pytest.mark.parametrize("name, N", [("softmax_rows", 130), ("softmax_rows", 512), ("bias_residual_layer_norm", 77),
                                     ("bias_residual_layer_norm", 4096)])
def test_wide_vectors_change_no_bit(name, N):
    # The kernels that ask LLVM for 512-bit vectors compute what they compute without asking, bit for bit: the
    # same operations in the same order on more lanes (fast_kernels._wide_vectors)
    f, fastmath = fast_kernels._FUNCS[name]
    assert "_wide_vectors" in f.__code__.co_names
    plain = numba.njit(error_model="numpy", fastmath=fastmath)(
        types.FunctionType(f.__code__, {**f.__globals__, "_wide_vectors": _no_op}, f.__name__ + "_plain"))
    if name == "softmax_rows":
        scores = randn(24, N, scale=30.0)
        args = (np.float32(0.125), np.float32(0.0))
        got, want = scores.copy(), scores.copy()
        fast_kernels.SERIAL[name](got, *args)
        plain(want, *args)
    else:
        h, residual, weight, beta, bias = randn(768, N), randn(768, N), randn(768), randn(768), randn(768)
        got, want = np.empty_like(h), np.empty_like(h)
        fast_kernels.SERIAL[name](h, bias, residual, weight, beta, 1e-12, got)
        plain(h, bias, residual, weight, beta, 1e-12, want)
    assert np.array_equal(got.view(np.int32), want.view(np.int32))


# --- whole forward passes vs model.py and transformers ---------------------------------------------


def random_batch(B, T, seed=0):
    r = np.random.default_rng(seed)
    ids = r.integers(1000, 30000, (B, T)).astype(np.int64)
    ids[:, 0] = 101  # [CLS]
    return ids, np.ones((B, T), np.int64)


def mixed_lengths(B, T, seed=0):
    ids, mask = random_batch(B, T, seed)
    lengths = np.random.default_rng(seed + 1).integers(2, T + 1, B)
    lengths[0] = T
    for b, n in enumerate(lengths):
        mask[b, n:] = 0
        ids[b, n:] = 0
    return ids, mask


def shape_cases():
    cases = {
        "2x9_packed": random_batch(2, 9),  # every token real: one packed matrix, no padding
        "6x24_mixed_padded": mixed_lengths(6, 24),
        "1x1": random_batch(1, 1),
    }
    ids, mask = random_batch(3, 12, seed=3)
    mask[0, 1:] = 0  # zero except [CLS]
    mask[1, :] = 0  # no real token: transformers attends uniformly over the masked keys
    mask[2, :5] = 0  # left padding: position 0 is a query but not a key
    cases["3x12_cls_only_empty_left"] = (ids, mask)
    return cases


CASES = shape_cases()


@cache
def _fast_params(ckpt: str, dtype: str):
    import minibert

    model = minibert.AutoModelForSequenceClassification.from_pretrained(ckpt, dtype=dtype)
    return model, fast.prepare(model.distilbert.params, model.config)


def computed(mask):
    """[B, T] of the positions fast.py computes: real tokens, position 0, every position of an empty sequence."""
    keep = mask.astype(bool)
    keep[:, 0] = True
    keep[~mask.astype(bool).any(1)] = True
    return keep


def logits_pool(ckpt, torch_ref, T):
    """torch's (float32, float64) logits on 8 more random sequences of T tokens. One text's 2 logits estimate
    torch's error poorly, so logits checks also pool it over more inputs (error_model's module doc, pool=)."""
    ids, mask = random_batch(8, T, seed=1000 + T)
    return torch_ref(ckpt, True, ids, mask), torch_ref(ckpt, True, ids, mask, dtype="float64")


def run_fast(ckpt, ids, mask, dtype="float32"):
    model, fp = _fast_params(str(ckpt), dtype)
    hidden = fast.distilbert(ids, mask, fp, model.config)
    cls = fast.distilbert(ids, mask, fp, model.config, cls_only=True)
    logits = classification_head(cls[:, None, :], model.params, model.ops)
    return model, hidden, cls, logits


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("ckpt_name", ["small_ckpt", "minilm_ckpt"])
def test_fast_matches_reference_and_torch(request, ckpt_name, case, torch_ref, record_error):
    ckpt = request.getfixturevalue(ckpt_name)
    ids, mask = CASES[case]
    model, hidden, cls, logits = run_fast(ckpt, ids, mask)
    keep = computed(mask)
    assert hidden.dtype == np.float32 and hidden.shape == (*ids.shape, model.config.dim)
    assert (hidden[~keep] == 0).all()  # what was never computed is 0
    ref_hidden = model.distilbert(ids, mask).last_hidden_state  # model.py, Numba ops
    ref_logits = model(ids, mask).logits
    for quantity, got, ref, head, where in (
        ("last_hidden_state", hidden, ref_hidden, False, keep),
        ("cls_only", cls[:, None, :], ref_hidden[:, :1], False, keep[:, :1]),  # [CLS]-only last block
        ("logits", logits, ref_logits, True, None),
    ):
        want32 = torch_ref(ckpt, head, ids, mask)[:, : got.shape[1]]
        want64 = torch_ref(ckpt, head, ids, mask, dtype="float64")[:, : got.shape[1]]
        pool = logits_pool(ckpt, torch_ref, ids.shape[1]) if head else None
        err, torch_err, _ = check_fp32(got, want32, want64, mask=where, pool=pool)
        check_fp32(got, ref, want64, mask=where)  # and within 2x of model.py's own float32 error
        record_error(ckpt_name, case, "fast", quantity, err, torch_err)


def test_fast_1x512_and_threads(minilm_ckpt, torch_ref, record_error):
    ids, mask = random_batch(1, 512, seed=5)
    fast.set_threads(1)
    try:
        _, hidden1, _, logits1 = run_fast(minilm_ckpt, ids, mask)
    finally:
        fast.set_threads(fast.default_threads())
    fast.set_threads(2)  # the parallel kernels
    try:
        _, hidden, _, logits = run_fast(minilm_ckpt, ids, mask)
    finally:
        fast.set_threads(fast.default_threads())
    for quantity, got, got1, head in (("last_hidden_state", hidden, hidden1, False), ("logits", logits, logits1, True)):
        want32 = torch_ref(minilm_ckpt, head, ids, mask)
        want64 = torch_ref(minilm_ckpt, head, ids, mask, dtype="float64")
        pool = logits_pool(minilm_ckpt, torch_ref, 512) if head else None
        err, torch_err, _ = check_fp32(got, want32, want64, pool=pool)
        check_fp32(got1, want32, want64, pool=pool)
        record_error("minilm_ckpt", "1x512", "fast", quantity, err, torch_err)


def test_fast_base_logits_mixed_batch(base_ckpt, torch_ref, record_error):
    ids, mask = mixed_lengths(4, 40, seed=7)
    _, _, _, logits = run_fast(base_ckpt, ids, mask)
    err, torch_err, _ = check_fp32(logits, torch_ref(base_ckpt, True, ids, mask),
                                   torch_ref(base_ckpt, True, ids, mask, dtype="float64"),
                                   pool=logits_pool(base_ckpt, torch_ref, 40))
    record_error("base_ckpt", "4x40_mixed_padded", "fast", "logits", err, torch_err)


def test_fast_base_few_tokens(base_ckpt, torch_ref, record_error):
    # <= fast_gemm.SMALL_N tokens: every product on fast_gemm's kernel, with base DistilBERT's K = 768 and 3072
    ids, mask = random_batch(1, 16, seed=8)
    _, hidden, _, logits = run_fast(base_ckpt, ids, mask)
    for quantity, got, head in (("last_hidden_state", hidden, False), ("logits", logits, True)):
        pool = logits_pool(base_ckpt, torch_ref, 16) if head else None
        err, torch_err, _ = check_fp32(got, torch_ref(base_ckpt, head, ids, mask),
                                       torch_ref(base_ckpt, head, ids, mask, dtype="float64"), pool=pool)
        record_error("base_ckpt", "1x16", "fast", quantity, err, torch_err)


@pytest.mark.parametrize("case", ["6x24_mixed_padded", "3x12_cls_only_empty_left"])
def test_fast_float64_matches_torch_double(small_ckpt, case, torch_ref):
    ids, mask = CASES[case]
    model, hidden, cls, logits = run_fast(small_ckpt, ids, mask, dtype="float64")
    assert hidden.dtype == cls.dtype == logits.dtype == np.float64
    want = torch_ref(small_ckpt, False, ids, mask, dtype="float64")
    assert max_abs_error(hidden, want, computed(mask)) <= FLOAT64_ATOL
    assert max_abs_error(logits, torch_ref(small_ckpt, True, ids, mask, dtype="float64")) <= FLOAT64_ATOL


def test_read_only_weights_are_never_written(small_ckpt):
    model, fp = _fast_params(str(small_ckpt), "float32")
    arrays = list(model.distilbert.state_dict.values())
    assert all(not a.flags.writeable for a in arrays)  # loaded read-only: a write would raise
    before = [a.copy() for a in arrays]
    ids, mask = CASES["6x24_mixed_padded"]
    run_fast(small_ckpt, ids, mask)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before, strict=True))


def test_fast_params_share_the_checkpoint_arrays(small_ckpt):
    # prepare copies nothing: every weight is the loaded array itself
    model, fp = _fast_params(str(small_ckpt), "float32")
    p = model.distilbert.params["transformer"]["layer"]["0"]
    assert fp.layers[0]["ffn"]["lin1"]["weight"] is p["ffn"]["lin1"]["weight"]
    assert fp.layers[0]["attention"]["q_lin"]["weight"] is p["attention"]["q_lin"]["weight"]
    assert fp.embeddings["word_embeddings"]["weight"] is model.distilbert.params["embeddings"]["word_embeddings"][
        "weight"]


def test_concurrent_calls_from_threads(minilm_ckpt, torch_ref):
    # Numba's workqueue pool runs one parallel kernel at a time; a second Python thread meanwhile gets the serial
    # twins. Every call must finish, within the float32 error model of transformers' numbers.
    from concurrent.futures import ThreadPoolExecutor

    ids, mask = mixed_lengths(4, 200, seed=9)
    model, fp = _fast_params(str(minilm_ckpt), "float32")
    fast.set_threads(2)
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: fast.distilbert(ids, mask, fp, model.config), range(8)))
    finally:
        fast.set_threads(fast.default_threads())
    want32 = torch_ref(minilm_ckpt, False, ids, mask)
    want64 = torch_ref(minilm_ckpt, False, ids, mask, dtype="float64")
    for got in results:
        check_fp32(got, want32, want64, mask=computed(mask))
