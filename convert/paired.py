"""Paired comparison of two models on the same images: how much accuracy INT8 loses, with a bound.

Both models render the same (prompt, seed) pairs, so each image gives a pair of verdicts
(FP32 right?, INT8 right?). Only discordant pairs carry information (McNemar 1947): `lost`
(FP32 right, INT8 wrong) and `gained` (the reverse); the drop is (lost - gained) / n. Its
confidence interval is the adjusted Wald interval for a difference of paired proportions
(Agresti and Min, "Simple improved confidence intervals for comparing matched proportions",
Statistics in Medicine 2005: add 0.5 to each cell), whose coverage stays near nominal even with
few discordant pairs. The gate is a non-inferiority test: INT8 passes when the upper bound of
its drop is at most the margin, so a model whose true drop is the margin passes about `alpha`
of the time, and one with no loss passes almost always once n is large enough
(tests/convert/test_paired.py simulates both at the gate's n = 2048).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.025  # one-sided: the upper end of the two-sided 95% interval decides
Z = 1.959963984540054  # standard normal quantile of 1 - ALPHA


@dataclass(frozen=True)
class PairedDrop:
    """Accuracy of FP32 and INT8 on the same n images, and INT8's drop (fractions, 0.01 = one point)."""

    n: int
    fp32: float
    int8: float
    lost: int       # images FP32 got right and INT8 wrong
    gained: int     # images INT8 got right and FP32 wrong
    drop: float     # fp32 - int8 = (lost - gained) / n
    lower: float    # two-sided 95% confidence interval of the drop
    upper: float

    def as_dict(self) -> dict:
        return asdict(self)


def paired_drop(right_fp32: np.ndarray, right_int8: np.ndarray) -> PairedDrop:
    """The paired accuracy drop of INT8 against FP32 with its 95% confidence interval.

    `right_fp32`, `right_int8`: bool [n], whether each image was judged right under each model.
    Raises: ValueError if they differ in length or are empty."""
    a, b = np.asarray(right_fp32, bool), np.asarray(right_int8, bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal-length, non-empty verdict vectors, got {a.shape} and {b.shape}")
    n = len(a)
    lost, gained = int((a & ~b).sum()), int((~a & b).sum())
    lower, upper = adjusted_wald(lost, gained, n)
    return PairedDrop(n, float(a.mean()), float(b.mean()), lost, gained, (lost - gained) / n, lower, upper)


def adjusted_wald(lost: int, gained: int, n: int, z: float = Z) -> tuple[float, float]:
    """Agresti-Min interval of (lost - gained) / n: 0.5 added to each of the four cells (n + 2 in all)."""
    b, c, m = lost + 0.5, gained + 0.5, n + 2.0
    diff = (b - c) / m
    spread = z * math.sqrt(max((b + c) / m - diff * diff, 0.0) / m)
    return diff - spread, diff + spread
