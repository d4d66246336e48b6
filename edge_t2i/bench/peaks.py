"""The machine's peak: the denominator of utilization (achieved GMAC/s over peak GMAC/s)."""

from __future__ import annotations

import numpy as np


def gemm_peak_gmacs(size: int = 1024, seconds: float = 1.0) -> float:
    """Best FP32 matrix-multiply throughput of this machine through NumPy's BLAS, in GMAC/s."""
    import time

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, size**3 / (time.perf_counter() - t0) / 1e9)
    return best
