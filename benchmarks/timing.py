"""Timing: interleaved repeats, numpy's sgemm rate, the GEMM limit of a forward, and foreign CPU load."""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def timed(fn: Callable, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)  # seconds per call
    inner: int = 1  # calls per sample

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.samples) * 1e3


def interleaved(
    runners: dict[str, Callable[[], object]], repeats: int, warmup: int, min_sample_s: float, gap_s: float
) -> dict[str, Timing]:
    """Warm every runner up, then `repeats` rounds with each runner once per round, in rotated order.

    Between samples we sleep `gap_s`: the worker threads of the previous competitor's thread pool
    (OpenMP, OpenBLAS, ONNX Runtime, OpenVINO) spin for a while after a call, and would otherwise
    steal CPU from the next competitor on a 2-core machine.
    """
    timings = {}
    for name, run in runners.items():
        best = min(timed(run) for _ in range(max(1, warmup)))
        timings[name] = Timing(inner=max(1, min(100, math.ceil(min_sample_s / max(best, 1e-9)))))
    names = list(runners)
    gc.collect()
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            n, run = timings[name].inner, runners[name]
            time.sleep(gap_s)
            t0 = time.perf_counter()
            for _ in range(n):
                run()
            timings[name].samples.append((time.perf_counter() - t0) / n)
    return timings


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """numpy's float32 matrix product peak on this machine: 2 n^3 flops per [n, n] @ [n, n], the best of `repeats`
    (noise only ever slows a product down, so the best is the closest to what the hardware and BLAS can do)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up: thread pool start, page faults
    seconds = min(timed(np.matmul, a, b, out) for _ in range(repeats))
    return 2 * n**3 / seconds / 1e9


def encoder_flops(config: dict, batch: int, seq: int) -> float:
    """Multiply-add flops of the encoder's products: L·(8·T·C² + 4·T·C·F + 4·B·S²·C), T = B·S.

    Per layer: Q, K, V and the output projection (4 · 2·T·C²), lin1 and lin2 (2 · 2·T·C·F), q·kᵀ and
    weights·v (2 · 2·B·S²·C). Everything else (softmax, GELU, LayerNorm, ...) is not counted: the
    "GEMM limit" is the time those products alone take at numpy's large-sgemm rate."""
    L, C, F = config["n_layers"], config["dim"], config["hidden_dim"]
    T = batch * seq
    return L * (8 * T * C**2 + 4 * T * C * F + 4 * batch * seq**2 * C)


class ForeignLoad:
    """How busy the CPUs were with other processes (not this one) since construction: from
    /proc/stat's busy time minus this process's own CPU time. 0.0 is an idle machine, 1.0 all cores busy."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        ticks = [int(x) for x in fields]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        own = sum(os.times()[:4])  # user + system, this process and its waited-for children
        return time.monotonic(), busy, own

    def share(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        foreign = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, foreign / (wall * (os.cpu_count() or 1)))
