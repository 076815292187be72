"""Products of few tokens: out [M, N] = weight [M, K] @ x [K, N] for N up to SMALL_N, on two cores.

fast.linear uses this instead of BLAS when a matrix has few columns (tokens). There the product is a stream of
the weights through the cores: base DistilBERT reads 170 MB of weights per forward pass whatever the number of
tokens, and at 16 tokens OpenBLAS moves them at ~14 GB/s where two cores can read ~45 GB/s. Two things lose:
BLAS packs the weights into panels before multiplying (one more pass over them), and every product wakes its
thread pool. Here the weights are read once, in place, and the second core is a worker that polls between
products instead of sleeping.

The kernel. A tile is ROWS rows of out by one or two vectors of LANES columns, held in registers over a block
of K_BLOCK k's:
    for k: acc[r][b] += weight[i + r, k] * x[k, j + b LANES : j + (b + 1) LANES]     (r < ROWS, b < 1 or 2)
so each weight is loaded once per tile (one broadcast feeds one or two FMAs) and each x vector once per ROWS
weights. The loop is written in LLVM IR with <LANES x float> vectors (`_tile_kernel`): Numba cannot keep an
accumulator array in registers, and LLVM lowers these vectors to whatever the CPU has (one zmm on AVX-512, two
ymm on AVX2). Every 16 k's the tile prefetches each of its weight rows PREFETCH weights ahead: eight slow streams
at once are more than the CPU's own prefetchers keep ahead of. The last tile of a row masks its columns beyond N.
Each block's sum is added into out, as in a BLAS kernel, and every output is summed in the same order whichever
thread computes it. tests/test_fast_gemm.py checks it against float64 within the error model's GEMM bound, and
tests/test_fast.py the whole forward pass as for every other step.

The threads. The rows of out are cut into CHUNKS chunks, and the calling thread and one worker thread take
chunks from a shared counter until none are left, so neither waits for the other to start: if the worker is
asleep or busy, the caller computes every chunk itself. The worker polls the counter for SPIN iterations after
its last chunk (a forward pass's products are tens of microseconds apart), then sleeps in read() on a pipe
until the caller writes to it; it never holds the GIL. Before a product large enough for BLAS's own threads,
fast.py sends it to sleep at once (`rest_before_blas`): two pools spinning on two cores slow each other down
(measured: 1x128 forward 42 -> 100 ms). One product runs at a time; a second Python thread meanwhile computes
alone. Without POSIX pipes (Windows) the caller computes alone.
"""

from __future__ import annotations

import atexit
import os
import threading
import time

import llvmlite.ir as ir
import numba
import numba.extending
import numpy as np
from numba.core import cgutils

ROWS = 8  # out rows per tile (2 * ROWS accumulators + 2 x vectors + a broadcast: 19 of AVX-512's 32 registers)
LANES = 16  # out columns per vector: one AVX-512 register of float32
# fast.py uses this kernel for forward passes of at most SMALL_N tokens. Up to 64, every attention product stays
# under BLAS_ONE_THREAD (one sequence: 64 * 64 * 64), so BLAS's threads never wake during such a forward pass.
SMALL_N = 64
# Sums run over blocks of K_BLOCK k's, each in fresh registers, added into out: as in a BLAS kernel, a float32
# sum of K terms then has the rounding error of K_BLOCK + K / K_BLOCK additions, not K (at 1x16, one running sum
# over k made the encoder's error 2.4x torch's; the harness's check allows 2x).
K_BLOCK = 256
# The weights stream from memory (a few-token forward reads all 170 MB of base DistilBERT's), 8 rows at a time,
# each row a slow stream (a cache line per 16 k's) that the CPU's own prefetchers keep too little ahead of. Every
# 16 k's the tile asks for each row's line PREFETCH weights ahead (llvm.prefetch, read, keep in all caches).
# Measured on the 36 products of base DistilBERT at 16 tokens, weights cold (Emerald Rapids Xeon): 2 threads
# 10.6 -> 9.2 ms (16.0 -> 18.4 GB/s; a plain 2-thread read of the same bytes: 22 GB/s), 1 thread 20.0 -> 17.1.
# 32 ahead: 10.4; 128: 10.1; 256 or more: slower than none; the non-temporal hint: 18.5. Only loads move: the
# sums are the same.
PREFETCH = 64
CHUNKS = 16  # row chunks per product: fine enough that a late worker still gets a share
SPIN = 3_000  # an idle worker polls this many times, with a sched_yield each (~0.5 us alone: ~1.5 ms), then sleeps

# ---------------------------------------------------------------------------------------------
# The tile, in LLVM IR.

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_F32, LANES)
_MASK = ir.VectorType(ir.IntType(1), LANES)
_BYTE_PTR = ir.IntType(8).as_pointer()


def _splat(builder, value, vector_type):
    v = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _tile_kernel(blocks: int):
    """The tile of ROWS rows by blocks * LANES columns over one block of k, as a Numba intrinsic:
    out[i : i + ROWS, j : j + n_valid] (+)= weight[i : i + ROWS, k0:k1] @ x[k0:k1, j : j + n_valid],
    n_valid <= blocks * LANES; `=` for the first block of k (first=True), `+=` after. Each broadcast weight feeds
    `blocks` FMAs, so wider tiles need fewer loads per FMA."""

    def codegen(context, builder, signature, args):
        w, xa, o = (context.make_array(t)(context, builder, a)
                    for t, a in zip(signature.args[:3], args[:3], strict=True))
        i, j, n_valid, k0, k1, first = args[3:]
        K = builder.extract_value(w.shape, 1)
        N = builder.extract_value(xa.shape, 1)
        lanes = ir.VectorType(_I64, LANES)
        masks = [builder.icmp_signed("<", ir.Constant(lanes, list(range(b * LANES, (b + 1) * LANES))),
                                     _splat(builder, n_valid, lanes)) for b in range(blocks)]
        vptr = _VEC.as_pointer()
        module = builder.module
        load = cgutils.get_or_insert_function(
            module, ir.FunctionType(_VEC, [vptr, _I32, _MASK, _VEC]), "llvm.masked.load.v16f32.p0")
        store = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [_VEC, vptr, _I32, _MASK]), "llvm.masked.store.v16f32.p0")
        fma = cgutils.get_or_insert_function(module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]), "llvm.fma.v16f32")
        zero = ir.Constant(_VEC, [0.0] * LANES)
        # accumulators acc[r][b]: allocas that LLVM promotes to registers
        acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(blocks)] for _ in range(ROWS)]
        rows = [builder.gep(w.data, [builder.mul(builder.add(i, _I64(r)), K)]) for r in range(ROWS)]
        x_j = builder.gep(xa.data, [j])
        prefetch = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [_BYTE_PTR, _I32, _I32, _I32]), "llvm.prefetch.p0")
        with cgutils.for_range(builder, builder.sub(k1, k0)) as loop:
            k = builder.add(k0, loop.index)
            with builder.if_then(builder.icmp_unsigned("==", builder.and_(k, _I64(15)), _I64(0))):
                for r in range(ROWS):  # each row's cache line PREFETCH weights ahead (read, high locality, data)
                    ahead = builder.gep(rows[r], [builder.add(k, _I64(PREFETCH))])
                    builder.call(prefetch, [builder.bitcast(ahead, _BYTE_PTR), _I32(0), _I32(3), _I32(1)])
            x_k = builder.gep(x_j, [builder.mul(k, N)])
            xk = [builder.call(load, [builder.bitcast(builder.gep(x_k, [_I64(b * LANES)]), vptr), _I32(4), masks[b],
                                      zero]) for b in range(blocks)]
            for r in range(ROWS):
                wk = _splat(builder, builder.load(builder.gep(rows[r], [k])), _VEC)
                for b in range(blocks):
                    builder.store(builder.call(fma, [wk, xk[b], builder.load(acc[r][b])]), acc[r][b])
        out_j = builder.gep(o.data, [j])
        for r in range(ROWS):
            out_r = builder.gep(out_j, [builder.mul(builder.add(i, _I64(r)), N)])
            for b in range(blocks):
                dst = builder.bitcast(builder.gep(out_r, [_I64(b * LANES)]), vptr)
                before = builder.select(first, zero, builder.call(load, [dst, _I32(4), masks[b], zero]))
                builder.call(store, [builder.fadd(before, builder.load(acc[r][b])), dst, _I32(4), masks[b]])
        return context.get_dummy_value()

    def tile(typingctx, weight, x, out, i, j, n_valid, k0, k1, first):
        return numba.types.void(weight, x, out, i, j, n_valid, k0, k1, first), codegen

    return numba.extending.intrinsic(tile)


_tile1 = _tile_kernel(1)
_tile2 = _tile_kernel(2)


@numba.njit(nogil=True, cache=True)
def _rows(weight, x, out, r0, r1):  # out[r0:r1] = weight[r0:r1] @ x, r0 and r1 multiples of ROWS
    k, n = x.shape
    for i in range(r0, r1, ROWS):
        j = 0
        while j < n:
            width = min(2 * LANES, n - j)
            for k0 in range(0, max(k, 1), K_BLOCK):  # (k = 0: one empty block, which writes the zeros)
                k1 = min(k, k0 + K_BLOCK)
                if width > LANES:
                    _tile2(weight, x, out, i, j, width, k0, k1, k0 == 0)
                else:
                    _tile1(weight, x, out, i, j, width, k0, k1, k0 == 0)
            j += width


# ---------------------------------------------------------------------------------------------
# Sharing the chunks. ctrl is an int64 array both threads see; the task's arrays travel as addresses.

TICKET, DONE, PARKED, REST, M, K, N, N_CHUNKS, ADDR = range(9)  # ctrl[ADDR:ADDR + 3]: weight, x, out


def _element(context, builder, signature, args):  # LLVM pointer to a[i] for an intrinsic's (a, i, ...) arguments
    array = context.make_array(signature.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])


@numba.extending.intrinsic
def _atomic_load(typingctx, a, i):
    def codegen(context, builder, signature, args):
        return builder.load_atomic(_element(context, builder, signature, args), "seq_cst", 8)
    return numba.types.int64(a, i), codegen


@numba.extending.intrinsic
def _atomic_store(typingctx, a, i, v):
    def codegen(context, builder, signature, args):
        builder.store_atomic(args[2], _element(context, builder, signature, args), "seq_cst", 8)
        return context.get_dummy_value()
    return numba.types.void(a, i, v), codegen


@numba.extending.intrinsic
def _compare_exchange(typingctx, a, i, expected, new):  # -> True if a[i] was expected and is now new
    def codegen(context, builder, signature, args):
        pair = builder.cmpxchg(_element(context, builder, signature, args), args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)
    return numba.types.boolean(a, i, expected, new), codegen


@numba.extending.intrinsic
def _fetch_add(typingctx, a, i, v):
    def codegen(context, builder, signature, args):
        return builder.atomic_rmw("add", _element(context, builder, signature, args), args[2], "seq_cst")
    return numba.types.int64(a, i, v), codegen


@numba.extending.intrinsic
def _f32_pointer(typingctx, address):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], _F32.as_pointer())
    return numba.types.CPointer(numba.types.float32)(address), codegen


_POSIX = os.name == "posix"


@numba.extending.intrinsic
def _yield_core(typingctx):  # sched_yield(2): an idle poll gives the core to any other runnable thread
    def codegen(context, builder, signature, args):
        if _POSIX:
            builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I32, []), "sched_yield"), [])
        return context.get_dummy_value()
    return numba.types.void(), codegen


@numba.extending.intrinsic
def _wait_for_byte(typingctx, fd):  # block in read(2) until a byte arrives on the pipe fd (POSIX)
    def codegen(context, builder, signature, args):
        if _POSIX:
            read = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_I64, [_I32, ir.IntType(8).as_pointer(), _I64]), "read")
            byte = cgutils.alloca_once(builder, ir.IntType(8))
            builder.call(read, [builder.trunc(args[0], _I32), byte, _I64(1)])
        return context.get_dummy_value()
    return numba.types.void(fd), codegen


@numba.njit(nogil=True, cache=True)
def _work(ctrl):
    # Take chunks of the posted product until none is left. The ticket is (product number << 32) | next chunk;
    # a chunk is ours once the compare-exchange moves the ticket on. The product cannot change under a chunk we
    # hold: the caller posts the next one only after every chunk is done, and posting changes the ticket's high
    # bits, which makes a compare-exchange against this product fail.
    while True:
        ticket = _atomic_load(ctrl, TICKET)
        chunk = ticket & 0xFFFFFFFF
        n_chunks = ctrl[N_CHUNKS]
        if chunk >= n_chunks or ticket >> 32 == 0:
            return
        m, k, n = ctrl[M], ctrl[K], ctrl[N]
        if _compare_exchange(ctrl, TICKET, ticket, ticket + 1):
            weight = numba.carray(_f32_pointer(ctrl[ADDR]), (m, k))
            x = numba.carray(_f32_pointer(ctrl[ADDR + 1]), (k, n))
            out = numba.carray(_f32_pointer(ctrl[ADDR + 2]), (m, n))
            size = (m // ROWS + n_chunks - 1) // n_chunks * ROWS
            _rows(weight, x, out, min(chunk * size, m), min((chunk + 1) * size, m))
            _fetch_add(ctrl, DONE, 1)


@numba.njit(nogil=True, cache=True)
def _serve(ctrl, fd, spin):
    # The worker, forever: take chunks of every posted product; idle for spin polls (or told to REST), sleep
    # in read() on the pipe until the caller writes a byte. It never returns to Python: a thread woken in Python
    # must first win the GIL from the caller, which can take the interpreter's 5 ms switch interval (measured
    # with an Event: 1x16 after a 50 ms pause, 9.4 -> 15 ms).
    while True:
        seen = -1  # a product posted while we slept is still worth a look
        idle = 0
        while idle < spin and _atomic_load(ctrl, REST) == 0:
            ticket = _atomic_load(ctrl, TICKET)
            if ticket != seen:
                _work(ctrl)
                seen = _atomic_load(ctrl, TICKET)
                idle = 0
            else:
                idle += 1
                _yield_core()
        _atomic_store(ctrl, PARKED, 1)
        _wait_for_byte(fd)
        _atomic_store(ctrl, PARKED, 0)


@numba.njit(nogil=True, cache=True)
def _post_and_work(ctrl, weight, x, out, product, n_chunks):  # the caller: post, take chunks, wait for the rest
    ctrl[M], ctrl[K], ctrl[N] = weight.shape[0], weight.shape[1], x.shape[1]
    ctrl[N_CHUNKS] = n_chunks
    _atomic_store(ctrl, DONE, 0)
    _atomic_store(ctrl, TICKET, product << 32)  # publishes the fields above
    _work(ctrl)
    while _atomic_load(ctrl, DONE) < n_chunks:  # the worker's last chunks (yielding, in case it waits for our core)
        _yield_core()


class _Worker:
    """The second core: one daemon thread running `_serve`, asleep in read() on a pipe when idle."""

    def __init__(self) -> None:
        self.ctrl = np.zeros(ADDR + 3, np.int64)
        self.lock = threading.Lock()  # one product at a time
        self.product = 0
        self.pid = -1
        self.pipe: tuple[int, int] | None = None

    def _start(self) -> None:  # (again in a forked child: it has no worker thread, and its own pipe)
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
        self.pipe = os.pipe()
        os.set_blocking(self.pipe[1], False)  # a full pipe already holds a wake-up: never wait on it
        self.ctrl[:] = 0
        self.ctrl[PARKED] = 1
        self.pid = os.getpid()
        args = (self.ctrl, self.pipe[0], SPIN)
        threading.Thread(target=_serve, args=args, name="minibert-gemm", daemon=True).start()

    def matmul(self, weight: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
        if self.pid != os.getpid():
            self._start()
        ctrl = self.ctrl
        ctrl[REST] = 0
        if ctrl[PARKED]:
            try:
                os.write(self.pipe[1], b"w")
            except BlockingIOError:
                pass
        self.product = self.product % (1 << 30) + 1
        ctrl[ADDR], ctrl[ADDR + 1], ctrl[ADDR + 2] = weight.ctypes.data, x.ctypes.data, out.ctypes.data
        _post_and_work(ctrl, weight, x, out, self.product, CHUNKS)


_WORKER = _Worker()


# OpenBLAS keeps a product of up to 65536 * 4 multiply-adds on the calling thread (interface/gemm.c:
# SMP_THRESHOLD_MIN times GEMM_MULTITHREAD_THRESHOLD); a larger one may wake its threads.
BLAS_ONE_THREAD = 1 << 18


def rest() -> None:
    """Send the worker to sleep now rather than after its idle polls."""
    _WORKER.ctrl[REST] = 1


atexit.register(rest)  # no polling while the interpreter shuts down


# After a product, OpenBLAS's threads poll for work for 2^28 CPU cycles (its THREAD_TIMEOUT default): ~0.1 s.
BLAS_SPIN_S = 0.1
_blas_spins_until = 0.0  # time.monotonic() until which BLAS's threads may be spinning (set below)


def rest_before_blas(multiply_adds: int) -> None:
    """Called before a BLAS product of that many multiply-adds (per call, for a batched matmul): if BLAS will run
    it on its threads, send the worker to sleep now rather than after its spin. A spinning worker holds a core
    that BLAS's threads are waiting for (measured: 1x128 forward 42 -> 100 ms with the worker left spinning),
    and BLAS's spinning threads hold the worker's core for ~0.1 s after, so `product` runs on the calling
    thread alone until then."""
    global _blas_spins_until
    if multiply_adds > BLAS_ONE_THREAD:
        rest()
        _blas_spins_until = time.monotonic() + BLAS_SPIN_S


def fits(weight: np.ndarray, x: np.ndarray, out: np.ndarray) -> bool:
    """Whether matmul takes this product: float32, C-contiguous, at most SMALL_N columns, rows in whole tiles."""
    return (x.shape[1] <= SMALL_N and weight.shape[0] % ROWS == 0
            and all(a.dtype == np.float32 and a.flags.c_contiguous for a in (weight, x, out)))


THREADS = 2  # this kernel's threads (1: the caller alone; more than 2 still means one worker): fast.set_threads sets it


def matmul(weight: np.ndarray, x: np.ndarray, out: np.ndarray, threads: int = 1) -> np.ndarray:
    """out [M, N] = weight [M, K] @ x [K, N], float32, C-contiguous, M a multiple of ROWS: on the calling thread,
    and with threads > 1 on the worker thread too."""
    if threads > 1 and _POSIX and _WORKER.lock.acquire(blocking=False):
        try:
            _WORKER.matmul(weight, x, out)
        finally:
            _WORKER.lock.release()
    else:
        _rows(weight, x, out, 0, weight.shape[0])
    return out


def product(weight: np.ndarray, x: np.ndarray, out: np.ndarray | None = None, threads: int | None = None,
            kernel: bool = True) -> np.ndarray:
    """weight [M, K] @ x [K, N]: on this kernel when `kernel` and it `fits`, else BLAS (the worker sent to rest
    first if BLAS may run it on its threads). The choice depends on the shapes only, so equal inputs give equal
    bits. threads: default THREADS; 1 while BLAS's threads may still be spinning from a product of their own (a
    classification head right after a long text's forward pass): the worker would fight them for its core."""
    if out is None:
        out = np.empty((weight.shape[0], x.shape[1]), np.result_type(weight, x))
    if kernel and fits(weight, x, out):
        threads = THREADS if threads is None else threads
        return matmul(weight, x, out, threads if time.monotonic() >= _blas_spins_until else 1)
    rest_before_blas(out.size * x.shape[0])
    return np.matmul(weight, x, out=out)
