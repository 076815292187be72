"""fast_gemm: the few-token products kernel and its worker thread, checked against float64 products within the
error model's GEMM bound (error_model.product_bound), and for what its threads must never do: give results that
depend on who computed a chunk, write outside the output, or hang when the worker is asleep, busy or gone."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from error_model import product_bound

from minibert import fast_gemm


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def check_product(weight, x, got):
    exact = weight.astype(np.float64) @ x.astype(np.float64)
    bound = product_bound(x.T, weight).T  # [M, N]
    err = np.abs(got - exact)
    assert (err <= bound).all(), f"max error {err.max():.3e}, bound there {bound.flat[err.argmax()]:.3e}"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("M,K", [(8, 7), (24, 768), (3072, 768), (768, 3072)])
@pytest.mark.parametrize("N", [1, 5, 16, 17, 31, 32, 33, 48, 64])
def test_matmul_within_the_product_bound(M, K, N, threads):
    weight, x = randn(M, K, seed=1), randn(K, N, seed=2)
    got = fast_gemm.matmul(weight, x, np.empty((M, N), np.float32), threads=threads)
    check_product(weight, x, got)


@pytest.mark.parametrize("N", [1, 16, 20, 64])
def test_threads_give_the_same_bits(N):
    # every output element is one tile's k-ordered sum, whichever thread computes it
    weight, x = randn(768, 768, seed=3), randn(768, N, seed=4)
    one = fast_gemm.matmul(weight, x, np.empty((768, N), np.float32), threads=1)
    for _ in range(5):
        two = fast_gemm.matmul(weight, x, np.empty((768, N), np.float32), threads=2)
        np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("N", [3, 17, 40])
def test_masked_columns_stay_inside_the_output(N):
    # the last tile of a row is masked: nothing past column N (or past the end of out) is written
    M, K = 16, 50
    weight, x = randn(M, K, seed=5), randn(K, N, seed=6)
    buffer = np.full(M * N + 64, 7.0, np.float32)
    out = buffer[: M * N].reshape(M, N)
    fast_gemm.matmul(weight, x, out, threads=2)
    check_product(weight, x, out)
    assert (buffer[M * N :] == 7.0).all()


def test_worker_asleep_or_resting():
    weight, x = randn(3072, 768, seed=7), randn(768, 16, seed=8)
    want = fast_gemm.matmul(weight, x, np.empty((3072, 16), np.float32), threads=1)
    for pause in (0.0, 0.01, 0.1):  # spinning, then asleep after its spin
        time.sleep(pause)
        np.testing.assert_array_equal(fast_gemm.matmul(weight, x, np.empty_like(want), threads=2), want)
    fast_gemm.rest_before_blas(1 << 30)  # told to sleep now
    np.testing.assert_array_equal(fast_gemm.matmul(weight, x, np.empty_like(want), threads=2), want)


def test_concurrent_callers():
    # one product at a time uses the worker; a caller arriving meanwhile computes alone, on its own arrays
    weights = [randn(768, 768, seed=10 + i) for i in range(4)]
    x = randn(768, 24, seed=9)
    first = [fast_gemm.matmul(w, x, np.empty((768, 24), np.float32), threads=1) for w in weights]
    errors = []

    def call(i):
        try:
            for _ in range(30):
                got = fast_gemm.matmul(weights[i], x, np.empty((768, 24), np.float32), threads=2)
                np.testing.assert_array_equal(got, first[i])
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    assert not errors, errors[0]
    for w, f in zip(weights, first, strict=True):
        check_product(w, x, f)


def _child(conn):
    weight, x = randn(768, 768, seed=11), randn(768, 16, seed=12)
    got = fast_gemm.matmul(weight, x, np.empty((768, 16), np.float32), threads=2)
    conn.send(got)


def test_forked_child_starts_its_own_worker():
    # the parent's worker thread does not exist in a forked child: the child must start one, not wait for it
    weight, x = randn(768, 768, seed=11), randn(768, 16, seed=12)
    want = fast_gemm.matmul(weight, x, np.empty((768, 16), np.float32), threads=2)  # parent's worker is up
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(child,))
    p.start()
    assert parent.poll(60), "the forked child hung"
    np.testing.assert_array_equal(parent.recv(), want)
    p.join(10)
    assert p.exitcode == 0


def test_fits():
    w, x, out = randn(16, 8), randn(8, 4), np.empty((16, 4), np.float32)
    assert fast_gemm.fits(w, x, out)
    assert not fast_gemm.fits(w.astype(np.float64), x.astype(np.float64), np.zeros((16, 4)))
    assert not fast_gemm.fits(randn(12, 8), x, np.empty((12, 4), np.float32))  # rows not in whole tiles
    assert not fast_gemm.fits(w, randn(4, 8).T, out)  # a transposed view
    wide = fast_gemm.SMALL_N + 1
    assert not fast_gemm.fits(w, randn(8, wide), np.empty((16, wide), np.float32))


def test_a_full_wake_up_pipe_never_blocks_the_caller():
    weight, x = randn(768, 768, seed=13), randn(768, 16, seed=14)
    want = fast_gemm.matmul(weight, x, np.empty((768, 16), np.float32), threads=2)
    worker = fast_gemm._WORKER
    read_end, write_end = worker.pipe
    try:
        while True:
            os.write(write_end, b"w" * 4096)
    except BlockingIOError:
        pass
    try:
        worker.ctrl[fast_gemm.PARKED] = 1  # as if asleep: the caller writes one more wake-up
        np.testing.assert_array_equal(fast_gemm.matmul(weight, x, np.empty_like(want), threads=2), want)
    finally:  # take the wake-ups back, or the worker would wake for each of them
        os.set_blocking(read_end, False)
        try:
            while os.read(read_end, 65536):
                pass
        except BlockingIOError:
            pass
        finally:
            os.set_blocking(read_end, True)


def test_no_worker_while_blas_threads_spin_and_the_same_bits(monkeypatch):
    # right after a product on BLAS's threads (which then poll for ~0.1 s), products run on the calling thread
    # alone; the kernel either way, so the result does not depend on timing
    monkeypatch.setattr(fast_gemm, "THREADS", 2)
    weight, x = randn(768, 768, seed=15), randn(768, 8, seed=16)
    kernel = fast_gemm.matmul(weight, x, np.empty((768, 8), np.float32), threads=1)
    ctrl = fast_gemm._WORKER.ctrl
    fast_gemm.rest_before_blas(1 << 30)
    ticket = int(ctrl[fast_gemm.TICKET])
    np.testing.assert_array_equal(fast_gemm.product(weight, x), kernel)
    assert int(ctrl[fast_gemm.TICKET]) == ticket  # nothing was posted to the worker
    monkeypatch.setattr(fast_gemm, "_blas_spins_until", 0.0)  # 0.1 s later
    np.testing.assert_array_equal(fast_gemm.product(weight, x), kernel)
    assert int(ctrl[fast_gemm.TICKET]) != ticket
