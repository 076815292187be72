"""Each Numba kernel agrees with its NumPy twin, and each NumPy twin with torch's definition."""

import numpy as np
import pytest
import torch

from minibert import kernels
from minibert.kernels import MASK_MIN

rng = np.random.default_rng(0)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 1, 8), (2, 7, 64), (3, 17, 768)])
@pytest.mark.parametrize("scale", [0.02, 1.0, 30.0])
def test_layer_norm(shape, scale):
    x = randn(*shape, scale=scale) + np.float32(scale)  # non-zero mean, as residual streams have
    w, b = 1 + randn(shape[-1], scale=0.1), randn(shape[-1], scale=0.1)
    ref = kernels.layer_norm_numpy(x, w, b, 1e-12)
    fast = kernels.layer_norm_numba(x, w, b, 1e-12)
    assert fast.dtype == ref.dtype == np.float32 and fast.shape == x.shape
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    want = torch.nn.functional.layer_norm(
        torch.from_numpy(x), (shape[-1],), torch.from_numpy(w), torch.from_numpy(b), eps=1e-12
    ).numpy()
    np.testing.assert_allclose(ref, want, rtol=0, atol=1e-5)


def test_layer_norm_of_constant_row_is_bias():
    # var = 0: eps keeps it finite, the normalised row is 0, the output is the bias
    x = np.full((2, 16), 3.5, dtype=np.float32)
    w, b = randn(16), randn(16)
    for fn in (kernels.layer_norm_numpy, kernels.layer_norm_numba):
        np.testing.assert_array_equal(fn(x, w, b, 1e-12), np.broadcast_to(b, x.shape))


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_gelu(scale):
    x = randn(4, 33, 96, scale=scale)
    x.flat[:6] = [0.0, -0.0, 1e-30, -40.0, 40.0, -5.5]  # saturation and sign edge cases
    ref = kernels.gelu_numpy(x)
    fast = kernels.gelu_numba(x)
    assert fast.dtype == ref.dtype == np.float32 and fast.shape == x.shape
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    want = torch.nn.functional.gelu(torch.from_numpy(x), approximate="none").numpy()
    np.testing.assert_allclose(ref, want, rtol=1e-6, atol=1e-6)
    tanh = torch.nn.functional.gelu(torch.from_numpy(x), approximate="tanh").numpy()
    if scale >= 1:  # near 0 the two forms agree to ~1e-6; further out this test tells them apart
        assert np.abs(ref - tanh).max() > 1e-4


def test_gelu_numba_on_a_dense_grid():
    # The Numba GELU uses a rational erf approximation; check it everywhere it matters, including
    # the clamp at |x| = 4 sqrt(2) and the saturated tails, against the exact (libm erf) twin.
    x = np.concatenate([np.linspace(-12, 12, 2_000_001, dtype=np.float32), np.float32([-1e4, 1e4, 5.6568542])])
    np.testing.assert_allclose(kernels.gelu_numba(x), kernels.gelu_numpy(x), rtol=0, atol=1e-6)


def _mask_bias(mask):
    return np.where(mask == 1, np.float32(0), MASK_MIN).astype(np.float32)


@pytest.mark.parametrize("T", [1, 5, 64])
def test_attention_softmax(T):
    B, H = 3, 4
    scores = randn(B, H, T, T, scale=5.0)
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, T // 2 + 1 :] = 0  # padding at the end of row 1
    mask[2, :] = 0  # a fully padded sequence must not give NaN
    bias = _mask_bias(mask)
    ref = kernels.attention_softmax_numpy(scores, 0.125, bias)
    fast = kernels.attention_softmax_numba(scores, 0.125, bias)
    assert fast.dtype == ref.dtype == np.float32 and fast.shape == scores.shape
    assert np.isfinite(fast).all() and np.isfinite(ref).all()
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.sum(-1), 1.0, atol=1e-5)
    if T > 1:
        assert (fast[1][..., T // 2 + 1 :] == 0).all()  # padded keys get exactly zero weight
    want = torch.softmax(torch.from_numpy(scores) * 0.125 + torch.from_numpy(bias)[:, None, None, :], dim=-1).numpy()
    np.testing.assert_allclose(ref, want, rtol=0, atol=1e-6)


def test_attention_softmax_accepts_non_contiguous_scores():
    scores = randn(2, 3, 6, 6).transpose(0, 1, 3, 2)
    bias = _mask_bias(np.ones((2, 6), dtype=np.int64))
    fast = kernels.attention_softmax_numba(scores, 0.125, bias)
    np.testing.assert_allclose(fast, kernels.attention_softmax_numpy(scores, 0.125, bias), rtol=0, atol=1e-6)


def test_public_softmax_matches_torch():
    x = randn(5, 7, scale=20.0)
    for axis in (-1, 0):
        want = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
        np.testing.assert_allclose(kernels.softmax(x, axis=axis), want, rtol=1e-6, atol=1e-7)
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


@pytest.mark.parametrize("rows", [1, 7, 64, 65, 300])
@pytest.mark.parametrize("n_in, n_out", [(48, 200), (200, 48)])
def test_linear_call_orders_agree(rows, n_in, n_out):
    # Both are float32 BLAS products; only the summation order differs, so they agree to a few
    # float32 ulps of the result (|y| ~ sqrt(n_in) here), and both match torch's linear.
    x, w, b = randn(rows, n_in), randn(n_out, n_in), randn(n_out)
    ref = kernels.linear_numpy(x, w, b)
    fast = kernels.linear_blas(x, w, b)
    assert fast.dtype == np.float32 and fast.flags.c_contiguous and fast.shape == (rows, n_out)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-5)
    want = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(ref, want, rtol=0, atol=1e-5)
