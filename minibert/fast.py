"""The fast forward pass: model.py's DistilBERT, step for step, on packed tokens with fused kernels.

model.py is the reference to learn from; this file computes the same function, in the same order, with the
same names, but shaped for speed. Read model.py first. The differences (each kept because it measurably paid;
tests/test_fast.py checks that the result is the same function):

* **Packed tokens, no padding.** A padded batch [B, T] becomes one matrix of its real tokens, N = sum of the
  lengths, for every token-wise step (linears, GELU, LayerNorm, residuals). Attention runs per sequence over
  that sequence's own tokens only: padding is never computed, so a mixed batch costs what its real tokens cost.
  Sequences of equal length are attended in one batched call.
* **Feature-major activations: [C, N], one column per token** (model.py's x is [B, T, C], a row per token).
  Every linear layer is then `weight @ x`, the checkpoint's [n_out, n_in] weight times a plain matrix: one
  untransposed GEMM, where model.py's `x @ weight.T` makes BLAS transpose the weight on the fly. With
  OpenBLAS's AVX-512 kernels that order is 1.6x faster on 16 tokens (base DistilBERT's 36 products: 16.3 ->
  10.1 ms), 1.2x on 128 (38.8 -> 31.9 ms), 1.06x on 512 and equal from 4096; equal everywhere on its AVX2
  kernels. The fused kernels below read and write [C, N] too, so nothing is ever transposed between steps.
* **Few tokens: fast_gemm's products.** A forward pass of at most fast_gemm.SMALL_N (64) tokens streams its
  170 MB of weights (base) through a kernel of its own on both cores, instead of BLAS, which packs them first
  and wakes its pool for every product: base DistilBERT's 1x16 classification, 11.9 -> 8.9 ms (benchmarks/).
* **[CLS] only after the last block** (`cls_only=True`, for classification): the last block computes K and V
  for every token (the [CLS] query attends to all of them) but the query, the attention row, out_lin, the FFN
  and both LayerNorms for the [CLS] column only.
* **Fused kernels** (fast_kernels.py): bias + GELU, bias + residual + LayerNorm, the attention softmax (scale,
  max, exp and sum while a row of keys is in L1), and the embedding sum + LayerNorm each in one pass. Heads are
  split and merged by strided views, not copies: Q, K, V are row blocks of one [3C, N] matrix, a head is D of
  their rows and a sequence S of their columns, and each head's context is written straight into its rows of
  the merged [C, N] matrix.
* **Buffers reused across the blocks**: each activation matrix is allocated once per call, not once per block
  (a fresh 50 MB array costs ~12,000 page faults).

Levers tried and dropped (measured on base DistilBERT, no gain beyond noise, so the simpler code stays):
Q/K/V weights stacked into one [3C, C] matrix (one GEMM instead of three, but +41 MB resident for base: the
three GEMMs write into row blocks of one [3C, N] matrix instead). OpenBLAS's threaded products run on
fast_gemm's worker (openblas_set_threads_callback_function) so that the fused kernels could split over both
cores between products: 1x512 ~3% faster, 1x128 and 8x64 equal, 32x128 equal or slower, and 3x slower at 1x128
while OpenBLAS's own threads still spun from other work. The FFN by column blocks of 512 or 1024 tokens, so
that the [F, N] activation stays in cache for GELU: 3-4% slower at 4096 and 16384 tokens (smaller GEMMs).
OPENBLAS_THREAD_TIMEOUT=4 (set before numpy loads OpenBLAS), so that BLAS's threads sleep right after a product
instead of polling ~0.1 s and the fused kernels could use the second core: it does remove the poll (GELU on
[3072, 4096] right after a product, 2 threads: 16.4 -> 8.4 ms), but two interleaved rounds of whole forward
passes moved 1x512 by -9% and +20% and 32x128 by -5% and +14% (BLAS now wakes its threads for every product),
and with it parallel kernels from 1M or 4M elements were no faster than the serial ones (1x512 300-340 ms vs
262-345; a Numba pool launch still costs ~0.2 ms, so 2 threads lost on every kernel below ~4096 tokens).
Attention fused into one kernel per (sequence, head) (2026-12-06, Intel Xeon, AVX-512): scores for 8 queries at
a time on fast_gemm's register tile (made strided; K packed in blocks of 32 keys, because a row stride of N
floats, a power of two at 1x512 or 32x128, put every row in the same L1 sets), the row softmax in L1, then the
context on the tile again. Its tiles ran at 150-164 GFLOP/s on one core, but the row softmax did not get faster
in L1 (~1 ns per score, at 8 lanes before fast_kernels' _wide_vectors), and on 2 threads it ran on
Numba's pool right after the Q/K/V products, whose OpenBLAS threads still spin on the second core. One layer
alone, BLAS path vs fused: 1x512 10.6 vs 6.8-7.3 ms, 32x128 31.9 vs 18.7-23.6; but right after a threaded
product 1x512 13.6, 32x128 37.2. Whole forward (interleaved, median ms): 1x128 64.8 -> 59.2, 8x64 202 -> 198,
1x512 228 -> 247, 32x128 1472 -> 1493 (serially 234 and 1532). Its results were bit-identical to this path's
(OpenBLAS also sums over 64 features, then over keys in blocks of 256). Sending OpenBLAS's threads to sleep
(blas_thread_shutdown_, 0.08 ms, +0.2 ms at the next product) made the fused layer 8.6 ms at 1x512 even after
a product, but it can race another thread's BLAS call in the same process: not done. Instead OpenBLAS held to one
thread during a forward pass, every product cut into two row blocks on Numba's two threads (one single-threaded
sgemm each, through its C address), so that no BLAS thread polls and the fused attention gets the second core:
the 36 products alone were slower, interleaved in one process (128 tokens 73 vs 63 ms, 512: 239 vs 218, 4096:
1279 vs 1227; each half packs all of x, which OpenBLAS's own two threads pack once and share), and in the 1x512
forward 181 vs 134 ms, more than the attention saved. With the fused attention run serially, fast_gemm's
products up to 128 tokens (no BLAS call left in such a forward): 1x128 84 vs 71 ms, 2x64 88 vs 72.
Attention in one kernel again, keys down (2026-12-06): scores transposed (8 packed keys by 32 queries), the softmax
down the columns in LLVM-IR vectors, the context as V's rows times the weights, written straight into out: bit-
identical to this path, attention alone 8x64 1.7 vs 2.2 ms per layer, 1x128 0.64 vs 0.83, 1x512 9.7 vs 9.1; whole
forwards (16 interleaved pairs) 0.97-1.01x, the mixed corpus 1.01x: noise-sized, not kept. The same
OPENBLAS_THREAD_TIMEOUT set inside a running process (openblas_read_env, blas_thread_shutdown_, blas_thread_init;
4, 18 or 21) with kernels parallel from 1M elements: median ratios 0.96-1.12 over four shapes, no gain. A GEMM of
our own (fast_gemm's tile unmasked, up to 14 x 32, on x packed in 32-column panels), one thread, the 36 products:
128 tokens 87 vs OpenBLAS's 90 ms, 512 tokens 327 vs 301; 146 vs 145 GFLOP/s even with x and the weights packed
for free. It matches OpenBLAS, it does not beat it, and the gap to OpenVINO is its products being faster than
OpenBLAS's (benchmarks/README.md). The same tile (12 x 32) on weights packed at load in ONNX Runtime's and
OpenVINO's way (12 rows interleaved per k), two threads, activations packed for free: the 36 products at 128
tokens 41.2 vs OpenBLAS's 45.2 ms, at 512 147.5 vs 157.4; the peers' own products 39-40 and 141-145
(benchmarks/ --products): level at best, for +170 MB per process. Not done.

Threads: `set_threads(n)`; by default MINIBERT_NUM_THREADS, else OMP_NUM_THREADS, else the cores this process
may use. BLAS keeps its own pool for the products (OpenBLAS reads OMP_NUM_THREADS / OPENBLAS_NUM_THREADS at
start); the fused kernels of large inputs split their work over Numba's pool (fast_kernels.py says why that pool
is the sleeping "workqueue" one); fast_gemm's products of few tokens use one worker thread when n > 1.

What a padded position holds in `last_hidden_state`: zeros. transformers computes a vector there (a padded
query still attends to the real keys); callers mask those positions out, and nothing here computes them.
Position 0 is the exception: it is always computed, masked or not, because classification heads read it.
A sequence whose mask is all zeros is computed in full with every key masked (uniform attention), exactly
as transformers does.

Shapes: B batch, T tokens per padded row, N packed tokens (sum of the lengths), C = dim, H = n_heads,
D = C // H, F = hidden_dim, S = one sequence's tokens, K = its keys. Activations are [features, tokens].
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numba
import numpy as np

from . import fast_gemm
from .fast_kernels import (
    attention_softmax,
    bias_activation,
    bias_add,
    bias_residual_layer_norm,
    embed_layer_norm,
)

Params = dict  # a nested dict of arrays, as in model.py


class FastParams(NamedTuple):
    """The weights in the layout of the fast path, built once by `prepare`. Arrays are the checkpoint's own
    (read-only, possibly views of a memory-mapped file): prepare copies nothing."""

    embeddings: Params  # word_embeddings, position_embeddings, token_type_embeddings, LayerNorm
    layers: list[Params]  # per block, model.py's tree: attention.{q,k,v,out}_lin, sa_layer_norm, ffn, output_layer_norm
    dtype: np.dtype


# ---------------------------------------------------------------------------------------------
# Threads. One number: the MINIBERT_NUM_THREADS environment variable, else OMP_NUM_THREADS, else the cores this
# process may run on. BLAS (OpenBLAS's own pool) uses it for the products; the fused kernels use Numba's pool
# for large inputs when it is above 1.

THREADS_ENV = ("MINIBERT_NUM_THREADS", "OMP_NUM_THREADS")


def default_threads() -> int:
    for name in THREADS_ENV:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_threads = fast_gemm.THREADS = default_threads()


def set_threads(n: int) -> None:
    """How many threads the fused kernels and fast_gemm's products use (1: serial)."""
    global _threads
    _threads = fast_gemm.THREADS = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


def _parallel() -> bool:
    if _threads > 1:
        numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Weights: prepared once at load.


def prepare(params: Params, cfg) -> FastParams:
    """The checkpoint's own arrays, regrouped: no copies (they may be read-only views of the file; nothing here
    or in the forward pass writes into them). DistilBERT gets a zero token-type row so BERT's kernel serves both."""
    emb = params["embeddings"]
    dtype = emb["word_embeddings"]["weight"].dtype
    embeddings = {
        "word_embeddings": emb["word_embeddings"],
        "position_embeddings": emb["position_embeddings"],
        "token_type_embeddings": emb.get("token_type_embeddings", {"weight": np.zeros((1, cfg.dim), dtype)}),
        "LayerNorm": emb["LayerNorm"],
    }
    layers = [params["transformer"]["layer"][str(i)] for i in range(cfg.n_layers)]
    return FastParams(embeddings, layers, np.dtype(dtype))


# ---------------------------------------------------------------------------------------------
# Packing: which tokens of the padded batch are computed, and where each sequence's columns are.


class Packed(NamedTuple):
    batch: np.ndarray  # [N] sequence of each packed token
    positions: np.ndarray  # [N] its position t in the padded row (for the position embedding and the unpacking)
    starts: np.ndarray  # [B + 1] sequence b is columns starts[b]:starts[b + 1]
    key_offsets: np.ndarray  # [B] its keys are columns starts[b] + key_offsets[b]:starts[b + 1] (1 if only a query)
    key_bias: np.ndarray  # [B] 0, or finfo.min for a sequence with no real token (every key masked)
    groups: list[tuple[int, int]]  # runs of consecutive sequences of the same layout, attended in one call


def pack(attention_mask: np.ndarray, dtype: np.dtype) -> Packed:
    # [B, T] mask -> the packed layout. Computed: the real tokens, plus position 0 (the [CLS] slot) always,
    # plus every position of a sequence that has no real token (transformers attends uniformly there).
    real = attention_mask != 0
    empty = ~real.any(axis=1)  # [B]
    keep = real.copy()
    keep[:, 0] = True
    keep[empty] = True
    batch, positions = np.nonzero(keep)  # row-major: each sequence's tokens in order, one block per sequence
    starts = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    key_offsets = (~real[:, 0] & ~empty).astype(np.int64)  # a padded position 0 is a query, never a key
    key_bias = np.where(empty, np.finfo(dtype).min, 0).astype(dtype)
    layout = list(zip(np.diff(starts).tolist(), key_offsets.tolist(), empty.tolist(), strict=True))
    groups, b0 = [], 0
    for b in range(1, len(layout) + 1):
        if b == len(layout) or layout[b] != layout[b0]:
            groups.append((b0, b - b0))
            b0 = b
    return Packed(batch, positions, starts, key_offsets, key_bias, groups)


def unpack(x: np.ndarray, packed: Packed, shape: tuple[int, int]) -> np.ndarray:
    # feature-major [C, N] -> [B, T, C], zeros where nothing was computed
    B, T = shape
    if x.shape[1] == B * T:
        return np.ascontiguousarray(x.T).reshape(B, T, -1)
    out = np.zeros((B, T, x.shape[0]), x.dtype)
    out[packed.batch, packed.positions] = x.T
    return out


def scratch(buffer: np.ndarray, rows: int, cols: int) -> np.ndarray:
    # a C-contiguous [rows, cols] matrix at the start of a flat buffer: BLAS writes it in place (a column slice
    # of a [rows, N] matrix would not be contiguous)
    return buffer[: rows * cols].reshape(rows, cols)


# ---------------------------------------------------------------------------------------------
# The architecture, as in model.py: one function per step, on packed tokens ([C, N]: a column per token).

def linear(weight: np.ndarray, x: np.ndarray, out: np.ndarray, par: bool = False, few_tokens: bool = False
           ) -> np.ndarray:
    # [n_in, N] -> out [n_out, N]: weight @ x, without the bias (the fused kernel that reads the result adds it).
    # few_tokens (the whole forward pass has at most fast_gemm.SMALL_N tokens): fast_gemm's kernel, which streams
    # the weights through both cores; else BLAS.
    return fast_gemm.product(weight, x, out, threads=_threads if par else 1, kernel=few_tokens)


def embeddings(input_ids, token_type_ids, packed: Packed, p: Params, eps: float, out: np.ndarray, par: bool = False
               ) -> np.ndarray:
    # [B, T] -> out [C, N]: word vector + position vector (+ token-type vector), LayerNorm, for the packed tokens
    ids = input_ids[packed.batch, packed.positions]
    types = (np.zeros_like(ids) if token_type_ids is None or "token_type_embeddings" not in p
             else np.asarray(token_type_ids)[packed.batch, packed.positions].astype(np.int64))
    return embed_layer_norm(
        ids, packed.positions, types, p["word_embeddings"]["weight"], p["position_embeddings"]["weight"],
        p["token_type_embeddings"]["weight"], p["LayerNorm"]["weight"], p["LayerNorm"]["bias"], eps, out, par,
    )


def attention_heads(q: np.ndarray, kv: np.ndarray, packed: Packed, n_heads: int, q_rows: str, out: np.ndarray,
                    par: bool = False) -> np.ndarray:
    # softmax(q k^T / sqrt(D)) v, per sequence and head, into out [C, Nq] (heads stacked, as model.py's merge).
    # q [C, Nq]: every packed token (q_rows="all") or one per sequence ("cls"); kv [2C, N]: K and V row blocks of
    # every packed token. A head is D rows, a sequence S columns: every split is a strided view BLAS reads in place.
    C = q.shape[0]
    H, D = n_heads, C // n_heads
    scale = D**-0.5
    for b0, G in packed.groups:  # G consecutive sequences with the same number of tokens S and keys K
        r0, r1 = packed.starts[b0], packed.starts[b0 + G]
        S = (r1 - r0) // G
        ko = packed.key_offsets[b0]
        q0, Sq = (r0, S) if q_rows == "all" else (b0, 1)
        kv_g = kv[:, r0:r1].reshape(2, H, D, G, S)[..., ko:]
        k = kv_g[0].transpose(2, 0, 1, 3)  # [G, H, D, K]
        v = kv_g[1].transpose(2, 0, 1, 3)  # [G, H, D, K]: V^T
        q_g = q[:, q0 : q0 + G * Sq].reshape(H, D, G, Sq).transpose(2, 0, 3, 1)  # [G, H, Sq, D]
        out_g = out[:, q0 : q0 + G * Sq].reshape(H, D, G, Sq).transpose(2, 0, 1, 3)  # [G, H, D, Sq]
        fast_gemm.rest_before_blas(Sq * D * k.shape[-1])
        scores = np.matmul(q_g, k, out=np.empty((G, H, Sq, k.shape[-1]), q.dtype))  # C-contiguous, unlike q_g @ k
        weights = attention_softmax(scores, scale, packed.key_bias[b0], par)  # [G, H, Sq, K]
        # (weights v)^T = v^T weights^T, written straight into the head's rows of the sequence's columns
        np.matmul(v, weights.transpose(0, 1, 3, 2), out=out_g)
    return out


def qkv_lin(x: np.ndarray, a: Params, out: np.ndarray, names=("q_lin", "k_lin", "v_lin"), par: bool = False,
            few_tokens: bool = False) -> np.ndarray:
    # [C, N] -> [len(names) * C, N]: the projections stacked, each GEMM writing straight into its row block
    C = x.shape[0]
    for j, name in enumerate(names):
        bias_add(linear(a[name]["weight"], x, out[j * C : (j + 1) * C], par, few_tokens), a[name]["bias"], par)
    return out[: len(names) * C]


def transformer_block(
    x: np.ndarray, packed: Packed, p: Params, cfg, buf: dict, cls_only: bool = False, par: bool = False
) -> np.ndarray:
    # [C, N] -> [C, N], into x's memory (post-LN, as model.py). With cls_only: -> [C, B], the [CLS] columns only.
    C, eps = cfg.dim, cfg.layer_norm_eps
    a = p["attention"]
    N = x.shape[1]
    few = N <= fast_gemm.SMALL_N  # few tokens in this forward pass: every product on fast_gemm's kernel
    if not cls_only:
        qkv = qkv_lin(x, a, scratch(buf["qkv"], 3 * C, N), par=par, few_tokens=few)  # [3C, N]
        q, kv = qkv[:C], qkv[C:]  # [C, N], [2C, N]: row blocks, no copies
    else:  # K and V for every token, the query for the [CLS] columns only
        kv = qkv_lin(x, a, scratch(buf["qkv"], 2 * C, N), ("k_lin", "v_lin"), par, few)  # [2C, N]
        x = np.ascontiguousarray(x[:, packed.starts[:-1]])  # [C, B]: from here on, the [CLS] columns only
        N = x.shape[1]
        q = qkv_lin(x, a, np.empty_like(x), ("q_lin",), par, few)  # [C, B]
    context = attention_heads(q, kv, packed, cfg.n_heads, "cls" if cls_only else "all", scratch(buf["context"], C, N),
                              par)
    attended = linear(a["out_lin"]["weight"], context, scratch(buf["hidden"], C, N), par, few)  # [C, N]
    # Each LayerNorm writes a matrix other than its residual input (x -> the spent context buffer -> x): written
    # in place, the compiled loop cannot rule out overlap and runs scalar, ~3x slower.
    ln = p["sa_layer_norm"]
    x_sa = bias_residual_layer_norm(attended, a["out_lin"]["bias"], x, ln["weight"], ln["bias"], eps, context, par)
    f = p["ffn"]
    h = linear(f["lin1"]["weight"], x_sa, scratch(buf["ffn"], cfg.hidden_dim, N), par, few)  # [F, N]
    h = bias_activation(h, f["lin1"]["bias"], cfg.activation, par)
    h = linear(f["lin2"]["weight"], h, scratch(buf["hidden"], C, N), par, few)  # [C, N]
    ln = p["output_layer_norm"]
    return bias_residual_layer_norm(h, f["lin2"]["bias"], x_sa, ln["weight"], ln["bias"], eps, x, par)


def distilbert(
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    fp: FastParams,
    cfg,
    *,
    cls_only: bool = False,
    token_type_ids: np.ndarray | None = None,
) -> np.ndarray:
    """[B, T] ids and mask -> last_hidden_state [B, T, C] (zeros at padded positions but position 0), or with
    cls_only=True the final [CLS] vector [B, C] that classification heads read. Output dtype = the weights'."""
    input_ids = np.asarray(input_ids)
    packed = pack(np.asarray(attention_mask), fp.dtype)
    N, C = len(packed.batch), cfg.dim
    buf = {  # activation matrices, allocated once (flat) and reused by every block
        "qkv": np.empty(3 * C * N, fp.dtype),
        "context": np.empty(C * N, fp.dtype),
        "hidden": np.empty(C * N, fp.dtype),
        "ffn": np.empty(cfg.hidden_dim * N, fp.dtype),
    }
    par = _parallel()
    x = embeddings(input_ids, token_type_ids, packed, fp.embeddings, cfg.layer_norm_eps, np.empty((C, N), fp.dtype),
                   par)  # [C, N]
    for i, p in enumerate(fp.layers):
        x = transformer_block(x, packed, p, cfg, buf, cls_only=cls_only and i == cfg.n_layers - 1, par=par)
    return np.ascontiguousarray(x.T) if cls_only else unpack(x, packed, input_ids.shape)
