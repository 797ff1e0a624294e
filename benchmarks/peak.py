"""The machine's float32 matrix-multiply throughput, measured with NumPy's BLAS."""

from __future__ import annotations

import time

import numpy as np


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` GFLOP/s of a (size x size) float32 product."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype("float32")
    b = np.random.default_rng(1).standard_normal((size, size)).astype("float32")
    a @ b  # warm the BLAS thread pool
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9
