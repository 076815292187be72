"""The fused Numba kernels of the fast path (fast.py): each does in one pass over memory what model.py does in
two or three NumPy steps, so an activation is read and written once instead of three times.

| kernel                     | does, per token                     | model.py's steps it fuses                    |
|----------------------------|-------------------------------------|----------------------------------------------|
| `embed_layer_norm`         | LN(word[id] + type[s] + pos[t])     | `embeddings`                                 |
| `bias_add`                 | h + bias, in place                  | `linear`'s bias add                          |
| `bias_activation`          | act(h + bias), in place             | `linear`'s bias add, then `ffn`'s GELU/ReLU  |
| `bias_residual_layer_norm` | LN(h + bias + residual)             | `linear`'s bias add, the residual, LayerNorm |
| `attention_softmax`        | softmax(scores * scale + key_bias)  | `ops.attention_softmax`, all four passes     |

Layouts follow fast.py: activations are feature-major, [C, N] with one column per token; attention scores are
[..., queries, keys] as in model.py.

Each is checked in tests/test_fast.py against its definition: the NumPy reference of kernels.py applied to the
same inputs, within the float32 error model. As in kernels.py, sums accumulate in float64, every kernel keeps
its input's dtype (float32, or float64 in the exact mode), and GELU uses the rational erf in float32 and libm's
erf in float64. The softmax computes its own exp in float32 (Cephes' expf: a Numba loop cannot call NumPy's SIMD
exp, and a libm call per element is ~10x slower) and libm's in float64.

Vector width: the LayerNorm and the softmax ask LLVM for 512-bit vectors where the CPU has them (`_wide_vectors`:
its tuning for Intel's AVX-512 server CPUs otherwise stops at 256), with the same bits as without.

Threads: the outer loops are `numba.prange`, so with `parallel=True` they split over Numba's thread pool. Whether
that pool is used is decided in fast.py (`set_threads`), once for the whole forward pass, and a kernel
runs its parallel twin only on inputs of PARALLEL_MIN_ELEMENTS or more.
"""

from __future__ import annotations

import math
import os
import threading
import types

import llvmlite.ir
import numba
import numba.extending
import numpy as np

from .kernels import _ERF_P, _ERF_Q

# ---------------------------------------------------------------------------------------------
# Scalar helpers, inlined into the kernels below.


@numba.extending.intrinsic
def _wide_vectors(typingctx):
    # Asks LLVM to vectorise the loops of the function that calls it with vectors of up to 512 bits. LLVM's tuning
    # for Intel's AVX-512 server CPUs prefers 256-bit vectors, half the lanes the CPU has, which halves the speed of
    # a loop bound by arithmetic. Measured on an Emerald Rapids Xeon: the softmax's float32 exp 0.67 -> 0.42
    # ns per element, the softmax [12, 512, 512] 4.1 -> 2.9 ms, the LayerNorm at 4096 tokens 5.4 -> 4.0 ms (bias +
    # GELU, whose float64 division is no faster per element on 512 bits, measured 7.3 -> 8.5 ms per 1x512 forward,
    # and does not use it). The same operations on more lanes: the results are the same bits. On a CPU without
    # 512-bit vectors (AVX2) LLVM keeps its own widest, so nothing changes there. Called first in a kernel's prange
    # body, so that Numba's parallel twin (which compiles that body as a function of its own) gets it too.
    # llvmlite's attribute set admits only the attributes it knows, not key="value" ones, hence set.add.
    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return numba.types.void(), codegen


@numba.njit(inline="always", error_model="numpy")
def _gelu32(v):  # x Phi(x) with kernels.py's rational erf (|error| 6.5e-8), branch-free so the loop vectorises
    p0, p1, p2, p3, p4, p5, p6 = _ERF_P
    q0, q1, q2, q3, q4 = _ERF_Q
    u = v * 0.7071067811865476  # x / sqrt(2)
    z = min(max(u, -4.0), 4.0)
    z2 = z * z
    p = (((((p0 * z2 + p1) * z2 + p2) * z2 + p3) * z2 + p4) * z2 + p5) * z2 + p6
    q = (((q0 * z2 + q1) * z2 + q2) * z2 + q3) * z2 + q4
    erf = 1.0 if u > 4.0 else (-1.0 if u < -4.0 else z * p / q)
    return 0.5 * v * (1.0 + erf)


@numba.njit(inline="always", error_model="numpy")
def _gelu64(v):  # x Phi(x) with libm's erf: float64 accuracy for the exact mode
    return 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))


# ---------------------------------------------------------------------------------------------
# Embeddings: word vector + position vector (+ token-type vector), then LayerNorm, per packed token.


TOKENS = 16  # tokens per block: a block's token-major scratch (16 x C) stays in L1


def _embed_layer_norm(ids, positions, types, word, position, token_type, weight, bias, eps, out):
    # ids, positions, types [N] -> out [C, N]; summed in model.py's order: (word + type) + position. Each token's
    # vectors are rows of the tables, so a block of tokens is normalised into token rows of a small scratch, then
    # written column by column (a contiguous run of the block's tokens per feature row of out).
    c, n = out.shape
    for block in numba.prange((n + TOKENS - 1) // TOKENS):
        i0 = block * TOKENS
        nb = min(TOKENS, n - i0)
        rows = np.empty((nb, c), out.dtype)
        for r in range(nb):
            w = word[ids[i0 + r]]
            p = position[positions[i0 + r]]
            t = token_type[types[i0 + r]]
            mean = 0.0
            for j in range(c):
                mean += np.float64(w[j] + t[j] + p[j])
            mean /= c
            var = 0.0
            for j in range(c):
                d = np.float64(w[j] + t[j] + p[j]) - mean
                var += d * d
            inv_std = 1.0 / math.sqrt(var / c + eps)
            for j in range(c):
                rows[r, j] = (np.float64(w[j] + t[j] + p[j]) - mean) * inv_std * weight[j] + bias[j]
        for j in range(c):
            oj = out[j, i0 : i0 + nb]
            for r in range(nb):
                oj[r] = rows[r, j]


# ---------------------------------------------------------------------------------------------
# act(h + bias) in place: the FFN's first linear layer finished. Feature-major: row j of h is feature j of every
# token, so bias[j] is one number per row and the inner loop runs along contiguous tokens.


def _bias_gelu(h, bias):  # [F, N] in place
    f, n = h.shape
    for j in numba.prange(f):
        b = bias[j]
        for i in range(n):
            h[j, i] = _gelu32(np.float64(h[j, i] + b))


def _bias_gelu_exact(h, bias):  # [F, N] in place, float64 mode
    f, n = h.shape
    for j in numba.prange(f):
        b = bias[j]
        for i in range(n):
            h[j, i] = _gelu64(h[j, i] + b)


def _bias_relu(h, bias):  # [F, N] in place
    f, n = h.shape
    for j in numba.prange(f):
        b = bias[j]
        for i in range(n):
            h[j, i] = max(h[j, i] + b, 0)


def _bias_add(h, bias):  # [C, N] in place: a linear layer's bias (3-4x faster than NumPy's broadcast h += b[:, None])
    c, n = h.shape
    for j in numba.prange(c):
        b = bias[j]
        for i in range(n):
            h[j, i] += b


# ---------------------------------------------------------------------------------------------
# LayerNorm(h + bias + residual): a linear layer's output, its bias, the residual sum and the post-LN.
# Feature-major: each token is a column, so its mean and variance are sums down the column. The loop takes
# COLUMNS tokens at a time and walks the features row by row, with one float64 sum per token: the inner loops
# are contiguous and vectorise. Two passes over the block, not three: the sums of d and d^2, d = x - x[0] (the
# column's first value: shifting by a value of the data keeps the one-pass variance accurate in float64), then
# the normalised write. out may be residual itself (each element is read before it is written).

COLUMNS = 256


def _bias_residual_layer_norm(h, bias, residual, weight, beta, eps, out):  # [C, N] -> [C, N]
    c, n = h.shape
    for block in numba.prange((n + COLUMNS - 1) // COLUMNS):
        _wide_vectors()
        i0 = block * COLUMNS
        w = min(COLUMNS, n - i0)
        # row pieces are 1-D slices, which Numba knows are contiguous: the loops over i vectorise
        h0, r0 = h[0, i0 : i0 + w], residual[0, i0 : i0 + w]
        shift = np.empty(w)
        for i in range(w):
            shift[i] = np.float64(h0[i] + bias[0]) + r0[i]
        s1, s2 = np.zeros(w), np.zeros(w)
        for j in range(c):
            hj, rj, bj = h[j, i0 : i0 + w], residual[j, i0 : i0 + w], bias[j]
            for i in range(w):
                d = np.float64(hj[i] + bj) + rj[i] - shift[i]  # h + bias rounded as model.py's linear does
                s1[i] += d
                s2[i] += d * d
        for i in range(w):  # s1 becomes the mean, s2 1 / std (explicit loops: an array expression inside prange
            m = s1[i] / c    # would be compiled as a parfor of its own)
            s1[i] = shift[i] + m
            s2[i] = 1.0 / math.sqrt(max(s2[i] / c - m * m, 0.0) + eps)
        for j in range(c):
            hj, rj, oj, bj = h[j, i0 : i0 + w], residual[j, i0 : i0 + w], out[j, i0 : i0 + w], bias[j]
            for i in range(w):
                oj[i] = (np.float64(hj[i] + bj) + rj[i] - s1[i]) * s2[i] * weight[j] + beta[j]


# ---------------------------------------------------------------------------------------------
# Attention softmax over the keys: scores * scale + key_bias, minus the row max, exp, divided by the row sum, in
# one kernel (a row of keys is at most 2 KB: it stays in L1 for its three loops). key_bias is one number for all
# keys of a sequence: 0 (the keys are exactly the sequence's real tokens; padding was never packed) or finfo.min
# (a sequence without any real token: every key masked, as transformers does, which gives uniform weights).


@numba.extending.intrinsic
def _float32_from_bits(typingctx, bits):  # int32 -> the float32 with those bits
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvmlite.ir.FloatType())
    return numba.types.float32(numba.types.int32), codegen


F32 = np.float32


@numba.njit(inline="always", error_model="numpy")
def _exp32(z):
    # float32 exp(z), z <= 0: Cephes' expf, exp(z) = 2^n exp(r) with |r| <= ln(2) / 2 and a degree-7 polynomial,
    # all in float32 and branch-free, so the loop vectorises (a libm call per element does not). Measured: <= 1 ulp
    # off the rounded exp on [-87, 0] (NumPy's SIMD exp: 2.4 ulps). Below -87.6, exp(z) < float32's smallest normal
    # number and the result is 0 (2^n must be a normal float32 for the bit trick below).
    x = max(z, F32(-87.6))
    n = np.floor(x * F32(1.4426950408889634) + F32(0.5))
    r = x - n * F32(0.693359375) + n * F32(2.12194440e-4)  # x - n ln(2), ln(2) in two parts (Cody-Waite)
    p = F32(1.9875691500e-4)
    p = p * r + F32(1.3981999507e-3)
    p = p * r + F32(8.3334519073e-3)
    p = p * r + F32(4.1665795894e-2)
    p = p * r + F32(1.6666665459e-1)
    p = p * r + F32(5.0000001201e-1)
    p = p * (r * r) + r + F32(1.0)
    e = p * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))  # times 2^n
    return e if z >= F32(-87.6) else F32(0.0)


def _exp_nonpositive(z):  # exp(z) for z <= 0, in z's dtype (the implementations are below)
    raise NotImplementedError


@numba.extending.overload(_exp_nonpositive, inline="always")
def _exp_nonpositive_impl(z):
    if z == numba.types.float32:
        return lambda z: _exp32(z)
    return lambda z: math.exp(z)  # float64 mode: libm's exp


def _row_max(row):  # the max of a contiguous row (the implementations are below)
    raise NotImplementedError


@numba.extending.overload(_row_max, inline="always")
def _row_max_impl(row):
    if row.dtype == numba.types.float32:
        return lambda row: _row_max32(row)
    return lambda row: np.max(row)  # float64 mode


@numba.njit(inline="always", error_model="numpy")
def _row_max32(row):
    # LLVM will not vectorise a float max reduction (a scalar chain, which cost as much as the softmax's other
    # three loops together), but it does an integer one (a fifth of that). Flipping the low 31 bits of negative
    # numbers makes the float32 order the int32 order of the bits (-0 < +0; there are no NaNs here), so the max
    # is taken over those keys.
    bits = row.view(np.int32)
    m = np.int32(-(2**31))
    for t in range(len(bits)):
        m = max(m, bits[t] ^ ((bits[t] >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    return _float32_from_bits(m ^ ((m >> np.int32(31)) & np.int32(0x7FFFFFFF)))


@numba.njit(error_model="numpy", fastmath={"reassoc"})
def _row_sum(row):  # float64 sum, vectorised (reassoc); its own function so that only this loop may reorder
    total = 0.0
    for t in range(len(row)):
        total += row[t]
    return total


def _softmax_rows(scores, scale, key_bias):  # [R, K] in place
    # compiled without fastmath: reassociation could fold _exp32's two-part ln(2) into one and lose its accuracy
    r, k = scores.shape
    for i in numba.prange(r):
        _wide_vectors()
        row = scores[i]
        m = _row_max(row) * scale + key_bias  # = the max of row * scale + key_bias (scale > 0, rounding is monotone)
        for t in range(k):
            row[t] = _exp_nonpositive(row[t] * scale + key_bias - m)  # each step rounded as model.py's are
        inv = 1.0 / _row_sum(row)
        for t in range(k):
            row[t] *= inv


# ---------------------------------------------------------------------------------------------
# Compiled twice: serial (one thread) and parallel (prange over rows on Numba's pool). fast.py picks one.

_FASTMATH = {"reassoc", "nsz"}  # reassoc: vectorised float64 sums (only reorders additions); nsz: sign of 0
# contract: the erf polynomial's multiply-adds as FMAs (one rounding instead of two). Measured on [3072, 512]:
# 1.82 -> 1.49 ms, and the same largest error against float64's erf GELU (4.0e-7, the float32 output rounding)
_GELU_FASTMATH = {"contract"}
_FUNCS = {
    "embed_layer_norm": (_embed_layer_norm, _FASTMATH),
    "bias_gelu": (_bias_gelu, _GELU_FASTMATH),
    "bias_gelu_exact": (_bias_gelu_exact, False),
    "bias_relu": (_bias_relu, False),
    "bias_add": (_bias_add, False),
    "bias_residual_layer_norm": (_bias_residual_layer_norm, _FASTMATH),
    "softmax_rows": (_softmax_rows, False),
}


def _twin(f, suffix: str):
    # A copy of f under another name: Numba's disk cache is keyed by the function's name, so the serial and the
    # parallel compilation of one loop must not share it (each would load the other's machine code).
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix)
    g.__qualname__ = f.__qualname__ + suffix
    return g


SERIAL = {name: numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=fm)(f)
          for name, (f, fm) in _FUNCS.items()}
PARALLEL = {name: numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=fm, parallel=True)(
    _twin(f, "_parallel")) for name, (f, fm) in _FUNCS.items()}

# Below this many elements a kernel runs serially even when threads are on. Waking Numba's pool costs ~0.14 ms,
# and the vectorised loops are fast enough that a second thread rarely pays it back: on base DistilBERT, 2 threads
# were slower for every kernel up to 1024 tokens (softmax over 128 tokens: 0.29 ms serial, 1.24 ms on 2 threads)
# and faster only from ~8M elements (GELU at 4096 tokens, 12.6M: 9.7 -> 7.2 ms; softmax at 25M: 36.5 -> 31.2 ms).
# In the whole forward, this threshold measured 8x64 120 ms serial vs 126 with a 64K threshold, 32x128 equal.
PARALLEL_MIN_ELEMENTS = 1 << 23

# Numba's pool: the "workqueue" layer, whose idle workers sleep. Its default here is GNU OpenMP, whose idle
# workers spin for a while after each kernel, on the very cores OpenBLAS's threads are about to use (that made
# parallel=True 5-20x slower before). A choice made with NUMBA_THREADING_LAYER is left alone. workqueue runs one
# parallel kernel at a time, so a call from a second Python thread meanwhile runs the serial twin (_POOL).
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
_POOL = threading.Lock()


def _run(name: str, size: int, parallel: bool, *args) -> None:
    if parallel and size >= PARALLEL_MIN_ELEMENTS and _POOL.acquire(blocking=False):
        try:
            PARALLEL[name](*args)
        finally:
            _POOL.release()
    else:
        SERIAL[name](*args)


# ---------------------------------------------------------------------------------------------
# The wrappers fast.py calls.


def embed_layer_norm(ids, positions, types, word, position, token_type, weight, bias, eps, out, parallel=False):
    # ids, positions, types [N] int64 -> out [C, N]; token_type [n_types, C] (a zero row for DistilBERT)
    _run("embed_layer_norm", out.size, parallel, ids, positions, types, word, position, token_type, weight, bias,
         eps, out)
    return out


def bias_activation(h: np.ndarray, bias: np.ndarray, activation: str, parallel: bool = False) -> np.ndarray:
    # [F, N] in place: act(h + bias[:, None]), act = exact GELU or ReLU
    if activation == "gelu":
        name = "bias_gelu" if h.dtype == np.float32 else "bias_gelu_exact"
    else:
        name = "bias_relu"
    _run(name, h.size, parallel, h, bias)
    return h


def bias_add(h: np.ndarray, bias: np.ndarray, parallel: bool = False) -> np.ndarray:
    # [C, N] in place: h + bias[:, None]
    _run("bias_add", h.size, parallel, h, bias)
    return h


def bias_residual_layer_norm(h, bias, residual, weight, beta, eps, out, parallel=False) -> np.ndarray:
    # [C, N]: out = LayerNorm over each column of h + bias[:, None] + residual. out may be residual, but the loop
    # runs ~3x faster into another matrix (it cannot vectorise what might overlap its input)
    _run("bias_residual_layer_norm", h.size, parallel, h, bias, residual, weight, beta, eps, out)
    return out


def attention_softmax(scores: np.ndarray, scale: float, key_bias: float, parallel: bool = False) -> np.ndarray:
    # [..., K] -> [..., K]: softmax(scores * scale + key_bias) over the last axis, in place if scores is
    # C-contiguous (else in a contiguous copy: matmul may lay its result out in its inputs' order)
    rows = np.ascontiguousarray(scores).reshape(-1, scores.shape[-1])
    dtype = rows.dtype.type
    _run("softmax_rows", rows.size, parallel, rows, dtype(scale), dtype(key_bias))
    return rows.reshape(scores.shape)
