"""Seed -> noise: the z a seed stands for, the same on every backend and platform.

A game stores a seed, not an image: `noise(seeds, nz)` re-creates the generator's
input exactly, so the same seed gives the same image through torch, ONNX Runtime
and TensorRT.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_t2i.errors import InputError


def noise(seeds: Sequence[int], nz: int) -> np.ndarray:
    """float32 [len(seeds), nz]: row i is `numpy.random.default_rng(seeds[i]).standard_normal(nz)`.

    NumPy's PCG64 bit generator with its ziggurat normal sampler (float32), which NumPy
    keeps stable across versions and platforms (NEP 19).
    Raises: InputError if a seed is not a non-negative integer (bools are refused)."""
    out = np.empty((len(seeds), nz), np.float32)
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise InputError(f"seeds must be non-negative integers, got {s!r}")
        out[i] = np.random.default_rng(int(s)).standard_normal(nz, dtype=np.float32)
    return out
