"""Each kernel (NumPy reference and Numba twin) against a float64 evaluation of its definition, within
a bound derived from the rounding its float32 steps do (error_model.py), and each definition against
torch's in float64. The float64 kernels are checked the same way with float64's unit roundoff.
"""

import numpy as np
import pytest
import torch
from error_model import U32, max_abs_error, product_bound

from minibert import kernels
from minibert.kernels import MASK_MIN

U64 = float(np.finfo(np.float64).eps) / 2
TINY32 = float(np.finfo(np.float32).tiny)
# kernels.py's stated accuracy of the Numba GELU's rational erf (|error| vs the exact erf, float64 evaluation)
RATIONAL_ERF_ERROR = 6.5e-8

rng = np.random.default_rng(0)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# --- LayerNorm -------------------------------------------------------------------------------------


def layer_norm_bound(x, w, b, exact, u):
    """First-order rounding bound for LayerNorm in a float format of unit roundoff u: the mean and variance are
    sums of C terms (error <= log2(C) u relative, pairwise), x - mean is rounded and then scaled by |w| / sigma,
    and the affine output is rounded once more. Margin: (log2 C + 4)."""
    x64, w64, b64 = f64(x, w, b)
    mean = x64.mean(-1, keepdims=True)
    sigma = np.sqrt(x64.var(-1, keepdims=True) + 1e-12)
    k = np.log2(x.shape[-1]) + 4
    scaled = np.abs(w64) * (np.abs(x64).mean(-1, keepdims=True) + np.abs(x64 - mean)) / sigma
    return k * u * (scaled + np.abs(exact) + np.abs(b64))


@pytest.mark.parametrize("shape", [(1, 1, 8), (2, 7, 64), (3, 17, 768)])
@pytest.mark.parametrize("scale", [0.02, 1.0, 30.0])
def test_layer_norm(shape, scale):
    x = randn(*shape, scale=scale) + np.float32(scale)  # non-zero mean, as residual streams have
    w, b = 1 + randn(shape[-1], scale=0.1), randn(shape[-1], scale=0.1)
    exact = kernels.layer_norm_numpy(*f64(x, w, b), 1e-12)
    bound = layer_norm_bound(x, w, b, exact, U32)
    for fn in (kernels.layer_norm_numpy, kernels.layer_norm_numba):
        got = fn(x, w, b, 1e-12)
        assert got.dtype == np.float32 and got.shape == x.shape
        assert (np.abs(got - exact) <= bound).all(), f"{fn.__name__}: {max_abs_error(got, exact):.2e}"
        got64 = fn(*f64(x, w, b), 1e-12)
        assert got64.dtype == np.float64
        assert (np.abs(got64 - exact) <= layer_norm_bound(x, w, b, exact, U64)).all(), fn.__name__
    want = torch.nn.functional.layer_norm(
        *[torch.from_numpy(a) for a in f64(x)], (shape[-1],), *[torch.from_numpy(a) for a in f64(w, b)], eps=1e-12
    ).numpy()
    assert (np.abs(exact - want) <= layer_norm_bound(x, w, b, exact, U64)).all()  # torch's definition


def test_layer_norm_of_constant_row_is_bias():
    # var = 0: eps keeps it finite, the normalised row is 0, the output is the bias
    x = np.full((2, 16), 3.5, dtype=np.float32)
    w, b = randn(16), randn(16)
    for fn in (kernels.layer_norm_numpy, kernels.layer_norm_numba):
        np.testing.assert_array_equal(fn(x, w, b, 1e-12), np.broadcast_to(b, x.shape))


# --- GELU ------------------------------------------------------------------------------------------


def gelu_bound(x, exact, rational_erf: bool, u=U32):
    # 0.5 x (1 + erf(x / sqrt 2)): for x < 0, 1 + erf cancels, so an erf error of a few float64 u is an absolute
    # error of ~u64 |x| (in the reference too); the result is then rounded once to its dtype (u |y|). The
    # rational erf adds its own error, times 0.5 |x|.
    x64 = np.abs(x.astype(np.float64))
    bound = u * np.abs(exact) + 4 * U64 * x64 + (TINY32 if u == U32 else 0.0)
    return bound + 0.5 * x64 * RATIONAL_ERF_ERROR if rational_erf else bound


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_gelu(scale):
    x = randn(4, 33, 96, scale=scale)
    x.flat[:6] = [0.0, -0.0, 1e-30, -40.0, 40.0, -5.5]  # saturation and sign edge cases
    exact = kernels.gelu_numpy(x.astype(np.float64))
    for fn, rational in ((kernels.gelu_numpy, False), (kernels.gelu_numba, True)):
        got = fn(x)
        assert got.dtype == np.float32 and got.shape == x.shape
        assert (np.abs(got - exact) <= gelu_bound(x, exact, rational)).all(), fn.__name__
        got64 = fn(x.astype(np.float64))  # the float64 mode: libm erf in both, no rational approximation
        assert got64.dtype == np.float64
        assert (np.abs(got64 - exact) <= gelu_bound(x, exact, False, U64)).all(), fn.__name__
    want = torch.nn.functional.gelu(torch.from_numpy(x.astype(np.float64)), approximate="none").numpy()
    assert (np.abs(exact - want) <= gelu_bound(x, exact, False, U64)).all()  # torch's exact-erf definition
    tanh = torch.nn.functional.gelu(torch.from_numpy(x.astype(np.float64)), approximate="tanh").numpy()
    if scale >= 1:  # near 0 the two forms agree to ~1e-6; further out this test tells them apart
        assert np.abs(exact - tanh).max() > 1e-4


def test_gelu_numba_on_a_dense_grid():
    # The Numba GELU uses a rational erf approximation; check it everywhere it matters, including
    # the clamp at |x| = 4 sqrt(2) and the saturated tails, against the exact (libm erf) definition.
    x = np.concatenate([np.linspace(-12, 12, 2_000_001, dtype=np.float32), np.float32([-1e4, 1e4, 5.6568542])])
    exact = kernels.gelu_numpy(x.astype(np.float64))
    got = kernels.gelu_numba(x)
    assert (np.abs(got - exact) <= gelu_bound(x, exact, rational_erf=True)).all()
    assert got[-3] == 0.0 and got[-2] == np.float32(1e4)  # exact tails


# --- attention softmax -----------------------------------------------------------------------------


def _mask_bias(mask, dtype=np.float32):
    return np.where(mask == 1, 0, np.finfo(dtype).min).astype(dtype)


def softmax_bound(scores, scale, bias, exact, u):
    # z = s * scale + mask - rowmax is rounded (relative u), so exp(z) is off by u |z| relative; exp itself
    # (NumPy's SIMD exp: a few ulps), the float64 row sum, and the final product add a few u more.
    z = np.float64(scale) * scores.astype(np.float64) + bias.astype(np.float64)[:, None, None, :]
    z = np.maximum(z - z.max(-1, keepdims=True), -1e3)  # masked keys: exactly 0 weight on both sides
    return u * (np.abs(z) + 8) * exact + (TINY32 if u == U32 else 0.0)


@pytest.mark.parametrize("T", [1, 5, 64])
def test_attention_softmax(T):
    B, H = 3, 4
    scores = randn(B, H, T, T, scale=5.0)
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, T // 2 + 1 :] = 0  # padding at the end of row 1
    mask[2, :] = 0  # a fully padded sequence must not give NaN
    bias = _mask_bias(mask)
    exact = kernels.attention_softmax_numpy(scores.astype(np.float64), 0.125, _mask_bias(mask, np.float64))
    bound = softmax_bound(scores, 0.125, bias, exact, U32)
    for fn in (kernels.attention_softmax_numpy, kernels.attention_softmax_numba):
        got = fn(scores, 0.125, bias)
        assert got.dtype == np.float32 and got.shape == scores.shape
        assert np.isfinite(got).all()
        assert (np.abs(got - exact) <= bound).all(), f"{fn.__name__}: {max_abs_error(got, exact):.2e}"
        if T > 1:
            assert (got[1][..., T // 2 + 1 :] == 0).all()  # padded keys get exactly zero weight
        got64 = fn(scores.astype(np.float64), 0.125, _mask_bias(mask, np.float64))
        assert got64.dtype == np.float64
        assert (np.abs(got64 - exact) <= softmax_bound(scores, 0.125, bias, exact, U64)).all(), fn.__name__
    s64, b64 = torch.from_numpy(scores.astype(np.float64)), torch.from_numpy(_mask_bias(mask, np.float64))
    want = torch.softmax(s64 * 0.125 + b64[:, None, None, :], dim=-1).numpy()
    assert (np.abs(exact - want) <= softmax_bound(scores, 0.125, bias, exact, U64)).all()  # torch's definition


def test_attention_softmax_accepts_non_contiguous_scores():
    scores = randn(2, 3, 6, 6).transpose(0, 1, 3, 2)
    bias = _mask_bias(np.ones((2, 6), dtype=np.int64))
    exact = kernels.attention_softmax_numpy(scores.astype(np.float64), 0.125, bias.astype(np.float64))
    got = kernels.attention_softmax_numba(scores, 0.125, bias)
    assert (np.abs(got - exact) <= softmax_bound(scores, 0.125, bias, exact, U32)).all()


def test_mask_value_is_float32_min():
    assert MASK_MIN == np.finfo(np.float32).min and np.isfinite(MASK_MIN)


def test_public_softmax_matches_torch():
    x = randn(5, 7, scale=20.0)
    for axis in (-1, 0):
        exact = kernels.softmax(x.astype(np.float64), axis=axis)
        want = torch.softmax(torch.from_numpy(x.astype(np.float64)), dim=axis).numpy()
        assert max_abs_error(exact, want) <= 4 * U64  # the same definition as torch's
        z = np.abs(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
        got = kernels.softmax(x, axis=axis)
        assert (np.abs(got - exact) <= U32 * (z + 8) * exact + TINY32).all()
    with pytest.raises(TypeError, match="float"):
        kernels.softmax(np.array([1, 2, 3]))


def test_backend_selection(monkeypatch):
    assert kernels.get_ops("numpy").gelu is kernels.gelu_numpy
    assert kernels.get_ops("numba").gelu is kernels.gelu_numba
    monkeypatch.setenv("MINIBERT_BACKEND", "numpy")
    assert kernels.get_ops().layer_norm is kernels.layer_norm_numpy
    monkeypatch.setenv("MINIBERT_BACKEND", "cuda")
    with pytest.raises(ValueError, match="MINIBERT_BACKEND"):
        kernels.get_ops()
    with pytest.raises(ValueError, match="backend"):
        kernels.get_ops("torch")


# --- linear ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 7, 64, 65, 300])
@pytest.mark.parametrize("n_in, n_out", [(48, 200), (200, 48)])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_linear_call_orders(rows, n_in, n_out, scale):
    # Both call orders are float32 BLAS products whose summation order depends on the CPU's BLAS kernel;
    # each must be within the probabilistic rounding bound of the exact product (error_model.product_bound).
    x, w, b = randn(rows, n_in, scale=scale), randn(n_out, n_in), randn(n_out)
    exact = kernels.linear_numpy(*f64(x, w, b))
    bound = product_bound(np.hstack([x, np.ones((rows, 1), np.float32)]), np.hstack([w, b[:, None]]))
    for fn in (kernels.linear_numpy, kernels.linear_blas):
        got = fn(x, w, b)
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == (rows, n_out)
        assert (np.abs(got - exact) <= bound).all(), f"{fn.__name__}: {max_abs_error(got, exact):.2e}"
        got64 = fn(*f64(x, w, b))
        assert got64.dtype == np.float64
        assert (np.abs(got64 - exact) <= bound * (U64 / U32)).all(), fn.__name__
    want = torch.nn.functional.linear(*[torch.from_numpy(a) for a in f64(x, w, b)]).numpy()
    assert (np.abs(exact - want) <= bound * (U64 / U32)).all()  # torch's definition
