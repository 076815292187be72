"""The float32 error model that every numeric test in this suite asserts with.

Two float32 programs that compute the same function (minibert and torch, or a NumPy kernel and its
Numba twin) differ because float32 rounds, and how much depends on the summation order that the
CPU's BLAS kernels pick. A fixed `atol` cannot hold for values of any size and on any CPU. So:

* Whole models: the truth is a float64 run (torch `model.double()`). minibert-fp32's max error
  against it must be at most FP32_RATIO x torch-fp32's max error against it, plus a floor of a few
  float32 ulps of the tensor's largest value (for outputs where torch happens to be exact).
* Products (dot products, GEMMs): Higham & Mary's probabilistic bound. A float32 sum of n products
  has |error| <= LAMBDA * sqrt(n) * u * sum|x_i w_i| except with probability 2 exp(-LAMBDA^2 / 2)
  per element (u = 2^-24, the unit roundoff); LAMBDA = 7 makes a false failure ~1e-11 per element.
* Element-wise kernels: a handful of roundings each, so a few u relative to the magnitude of the
  value they compute (`ulps`).

A max over a handful of numbers (the 2 logits of one text) is a poor estimate of torch's error: two
float32 programs equally accurate on the [CLS] vector (768 numbers) can be 10x apart on its 2 logits
by chance. So for small outputs, torch's error is also measured on a pool of the same model's outputs
on more inputs (`pool=`), and the bound uses the larger of the two estimates.
"""

from __future__ import annotations

import numpy as np

U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32, 2^-24 ~ 6e-8
LAMBDA = 7.0  # probabilistic-bound constant: P(false failure) ~ 2 exp(-24.5) ~ 5e-11 per element
FP32_RATIO = 2.0  # minibert may be at most this many times further from float64 than torch is
FLOOR_ULPS = 4.0  # absolute floor: this many float32 ulps of the tensor's largest |value|


def max_abs_error(got, want, mask=None) -> float:
    """max |got - want| in float64, over the positions where mask (broadcast over trailing axes) is 1."""
    diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    if mask is not None:
        diff = diff[np.asarray(mask).astype(bool)]
    return float(diff.max()) if diff.size else 0.0


def floor(ref64) -> float:
    """A few float32 ulps of the reference's largest magnitude: the least any float32 program can promise."""
    return FLOOR_ULPS * U32 * float(np.abs(np.asarray(ref64, dtype=np.float64)).max())


def bound_for(torch_error: float, ref64) -> float:
    """The largest error from float64 that a float32 result may have, given torch's (or a pooled) error."""
    return FP32_RATIO * torch_error + floor(ref64)


def fp32_bound(torch32, ref64, mask=None) -> float:
    """The largest error from float64 that a float32 result may have: FP32_RATIO x torch's own, plus floor."""
    return bound_for(max_abs_error(torch32, ref64, mask), ref64)


def check_fp32(got32, torch32, ref64, mask=None, pool=None) -> tuple[float, float, float]:
    """(minibert error, torch error, bound), all against the float64 reference; asserts error <= bound.

    pool: optional (torch32, ref64) of the same model on more inputs, for outputs too small for their own max
    error to estimate torch's (see the module doc); the bound then uses the larger of the two torch errors."""
    err = max_abs_error(got32, ref64, mask)
    torch_err = max_abs_error(torch32, ref64, mask)
    scale = max(torch_err, max_abs_error(*pool)) if pool is not None else torch_err
    bound = bound_for(scale, ref64)
    assert err <= bound, (
        f"float32 error vs float64 is {err:.3e}; torch's is {torch_err:.3e} (pooled {scale:.3e}), so the bound is "
        f"{bound:.3e} ({FP32_RATIO}x torch + {FLOOR_ULPS} ulps of max|ref| = {floor(ref64):.3e})"
    )
    return err, torch_err, bound


def product_bound(x, w) -> np.ndarray:
    """Per-output bound on |float32 x @ w.T - exact| for x [N, n], w [M, n]: LAMBDA sqrt(n) u sum|x w|.

    n + 1 terms: the bias add is one more rounded addition."""
    x64 = np.abs(np.asarray(x, dtype=np.float64))
    w64 = np.abs(np.asarray(w, dtype=np.float64))
    n = x64.shape[-1] + 1
    return LAMBDA * np.sqrt(n) * U32 * (x64 @ w64.T)


def ulps(ref64, k: float) -> np.ndarray:
    """k float32 ulps (unit roundoffs) of each |value|, plus k ulps of the smallest normal float32."""
    return k * U32 * np.abs(np.asarray(ref64, dtype=np.float64)) + k * float(np.finfo(np.float32).tiny)
