"""The element-wise hot loops of DistilBERT, each as a NumPy reference beside its Numba twin.

The NumPy versions are the definition: short, obviously right, and what `backend="numpy"` runs.
The Numba versions compute the same thing in one pass over memory, with float64 accumulators;
tests/test_kernels.py checks each pair against a float64 evaluation, within the float32 error model.
Every op keeps its input's dtype: float32 by default, float64 in the exact reference mode
(`dtype="float64"`), where Numba compiles a float64 specialisation of each kernel.

Matrix products go to BLAS through NumPy, except those of a few rows (`linear_blas`): those go to
fast_gemm's kernel, as in the fast path, in the order (W x^T)^T.
The kernels are single-threaded on purpose: BLAS already keeps both cores busy, and a second
thread pool (Numba's parallel=True) spinning against OpenBLAS's made a forward pass 5-20x slower
on this 2-core machine (benchmarks/ has the numbers).
Kernels compile lazily on first call and are cached on disk (`cache=True`), so `import minibert`
stays cheap and only the very first run on a machine pays the compile.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

from . import fast_gemm

# Additive attention-mask value for padded keys: finfo(dtype).min, not -inf, so that a row whose
# keys are all padding softmaxes to a uniform row instead of 0/0 = NaN (this is what transformers does).
# This is float32's; the float64 mode uses np.finfo(np.float64).min.
MASK_MIN = np.finfo(np.float32).min


# ---------------------------------------------------------------------------------------------
# LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.


def layer_norm_numpy(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    # [..., C] -> [..., C]
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(x.dtype, copy=False)


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})  # reassoc: vectorised sums
def _layer_norm_rows(x, weight, bias, eps, out):  # [N, C] -> [N, C]
    n, c = x.shape
    for i in range(n):
        mean = 0.0
        for j in range(c):
            mean += x[i, j]
        mean /= c
        var = 0.0
        for j in range(c):
            d = x[i, j] - mean
            var += d * d
        inv_std = 1.0 / math.sqrt(var / c + eps)
        for j in range(c):
            out[i, j] = (x[i, j] - mean) * inv_std * weight[j] + bias[j]


def layer_norm_numba(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    # [..., C] -> [..., C]
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    _layer_norm_rows(rows, weight, bias, eps, out)
    return out.reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# GELU, the exact erf form (not the tanh approximation): x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).

# NumPy has no erf; math.erf is the C library's, correctly rounded in float64. Vectorised in
# Python it is slow, which is fine for the reference path.
_erf = np.frompyfunc(math.erf, 1, 1)


def gelu_numpy(x: np.ndarray) -> np.ndarray:
    # [...] -> [...], evaluated in float64 and rounded once to x's dtype
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 / math.sqrt(2.0)).astype(np.float64))).astype(x.dtype)


# The Numba twin cannot afford a libm call per element (15 ns). It evaluates a rational
# approximation, erf(z) ~ z P(z^2) / Q(z^2) on |z| <= 4 (the float32 erf of Eigen and XLA), in
# float64: max |error| 6.5e-8 against math.erf; beyond, erf(z) = +-1 (true to 1.5e-8).
# No calls and no branches, so LLVM vectorises the loop (~1.5 ns per element).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


@numba.njit(cache=True, error_model="numpy")  # numpy error model: no zero-division check, so it vectorises
def _gelu_flat(x, out):  # [N] -> [N]
    p0, p1, p2, p3, p4, p5, p6 = _ERF_P
    q0, q1, q2, q3, q4 = _ERF_Q
    for i in range(x.size):
        v = np.float64(x[i])
        u = v * 0.7071067811865476  # x / sqrt(2)
        z = min(max(u, -4.0), 4.0)
        z2 = z * z
        p = (((((p0 * z2 + p1) * z2 + p2) * z2 + p3) * z2 + p4) * z2 + p5) * z2 + p6
        q = (((q0 * z2 + q1) * z2 + q2) * z2 + q3) * z2 + q4
        erf = 1.0 if u > 4.0 else (-1.0 if u < -4.0 else z * p / q)  # exact tails: GELU(-1e4) = 0
        out[i] = 0.5 * v * (1.0 + erf)


# The float64 mode needs erf to float64 accuracy, which the rational form above does not have:
# there, libm's erf per element (slow, but the float64 mode is the exact reference, not the fast one).
@numba.njit(cache=True, error_model="numpy")
def _gelu_flat_exact(x, out):  # [N] -> [N]
    for i in range(x.size):
        v = x[i]
        out[i] = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))


def gelu_numba(x: np.ndarray) -> np.ndarray:
    # [...] -> [...]
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    (_gelu_flat if flat.dtype == np.float32 else _gelu_flat_exact)(flat, out)
    return out.reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Linear layer: x @ W^T + b. Both versions are BLAS; the fast one only picks the call order.


def linear_numpy(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    # [N, n_in], weight [n_out, n_in] -> [N, n_out]
    return x @ weight.T + bias


SKINNY_ROWS = 64


def linear_blas(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    # [N, n_in], weight [n_out, n_in] -> [N, n_out]. A few rows (one short text; a classification head's
    # [CLS] rows) as (W x^T)^T on fast_gemm, which streams the weights on both cores, and which keeps
    # OpenBLAS's threads asleep (once woken they spin for ~0.1 s, against fast_gemm's worker); for many
    # rows BLAS's plain order (benchmarks/results.md has the measurements).
    if x.shape[0] <= SKINNY_ROWS:
        return np.add(fast_gemm.product(weight, np.ascontiguousarray(x.T)).T, bias, order="C")
    return x @ weight.T + bias


def relu(x: np.ndarray) -> np.ndarray:
    # [...] -> [...]; already one fast NumPy pass, no twin needed. (A Python 0 keeps x's dtype.)
    return np.maximum(x, 0)


# ---------------------------------------------------------------------------------------------
# Attention softmax: scale the raw scores, add the padding mask, softmax over the keys.


def attention_softmax_numpy(scores: np.ndarray, scale: float, mask_bias: np.ndarray) -> np.ndarray:
    # scores [B, H, T, T] = q @ k^T, mask_bias [B, T] (0 for real keys, finfo.min for padding) -> [B, H, T, T]
    scores = scores * scores.dtype.type(scale) + mask_bias[:, None, None, :]  # in scores' dtype, in torch's order
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return scores / scores.sum(axis=-1, keepdims=True)


@numba.njit(cache=True, error_model="numpy")
def _scale_mask_shift_rows(scores, scale, mask_bias, out):  # [B, R, T], [B, T] -> [B, R, T]; R = H * T
    # out = scores * scale + mask - rowmax, so that every exp below is <= 1 (no overflow)
    B, R, T = scores.shape
    for b in range(B):
        for r in range(R):
            m = -np.inf
            for t in range(T):
                v = scores[b, r, t] * scale + mask_bias[b, t]
                out[b, r, t] = v
                m = max(m, v)
            for t in range(T):
                out[b, r, t] -= m


# reassoc lets LLVM vectorise the sum (it only reorders float64 additions); nsz: ignore the sign of 0.
@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _normalize_rows(e):  # [B, R, T] -> [B, R, T], each row divided by its (float64) sum
    B, R, T = e.shape
    for b in range(B):
        for r in range(R):
            total = 0.0
            for t in range(T):
                total += e[b, r, t]
            inv = 1.0 / total
            for t in range(T):
                e[b, r, t] *= inv  # product in float64, rounded once on store


def attention_softmax_numba(scores: np.ndarray, scale: float, mask_bias: np.ndarray) -> np.ndarray:
    # scores [B, H, T, T], mask_bias [B, T] -> [B, H, T, T]
    B, H, T, K = scores.shape
    rows = np.ascontiguousarray(scores).reshape(B, H * T, K)
    out = np.empty_like(rows)
    dtype = rows.dtype.type
    _scale_mask_shift_rows(rows, dtype(scale), np.ascontiguousarray(mask_bias, dtype=rows.dtype), out)
    # The exp itself is NumPy's: SIMD-vectorised, ~10x faster than the libm call per element that a
    # Numba loop makes.
    np.exp(out, out=out)
    _normalize_rows(out)
    return out.reshape(scores.shape)


# ---------------------------------------------------------------------------------------------
# Backend selection.


class Ops(NamedTuple):
    """The operations a forward pass takes from its backend; model.py does the rest in plain NumPy."""

    linear: Callable[..., np.ndarray]
    layer_norm: Callable[..., np.ndarray]
    gelu: Callable[..., np.ndarray]
    relu: Callable[..., np.ndarray]
    attention_softmax: Callable[..., np.ndarray]


BACKENDS: dict[str, Ops] = {
    "numpy": Ops(linear_numpy, layer_norm_numpy, gelu_numpy, relu, attention_softmax_numpy),
    "numba": Ops(linear_blas, layer_norm_numba, gelu_numba, relu, attention_softmax_numba),
}
BACKEND_ENV = "MINIBERT_BACKEND"


def get_ops(backend: str | None = None) -> Ops:
    """`backend` argument, else the MINIBERT_BACKEND environment variable, else "numba"."""
    name = backend if backend is not None else os.environ.get(BACKEND_ENV, "numba")
    if name not in BACKENDS:
        source = "backend" if backend is not None else f"${BACKEND_ENV}"
        raise ValueError(f"{source} must be one of {sorted(BACKENDS)}, got {name!r}")
    return BACKENDS[name]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax, the NumPy stand-in for torch.nn.functional.softmax(x, dim=axis)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"softmax expects a float array, got dtype {x.dtype}")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
