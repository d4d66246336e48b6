"""Frame-time statistics, kept pure so tests can check them on known inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of per-call latencies, in milliseconds (linear interpolation)."""
    if len(latencies_s) == 0:
        raise ValueError("no latencies")
    ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(ms.max())}
