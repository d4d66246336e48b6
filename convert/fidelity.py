"""The quality gate for generators without an attribute oracle: INT8 against FP32, image by image.

For a model outside the shapes domain nothing can say whether an image shows what its prompt asks,
but INT8 can still be held to FP32: both render the same (embedding, seed) pairs (2,048 by default,
as the oracle gate; embeddings and seeds not used for calibration) and each pair gives a PSNR (dB,
uint8 pixels) and an SSIM (Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error
visibility to structural similarity", IEEE TIP 2004; scikit-image's `structural_similarity`, 7x7
windows, over the RGB channels). The gate decides on the lower end of the two-sided 95% confidence
interval of each metric's mean (Student's t over the per-image values): INT8 passes when the lower
bound of the mean PSNR is at least `min_psnr_db` and that of the mean SSIM at least `min_ssim`, so a
few lucky images cannot carry a model whose typical image is damaged. The result names the metric
that decided: the one that failed, or, when both pass, the one nearer its threshold.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_t2i.errors import ConvertError, require
from edge_t2i.eval.kid import MIN_GATE_IMAGES  # numpy only at import: torch is loaded when features are made
from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_t2i.runtime.pipeline import render as render_backend

MAX_PSNR_DB = 100.0      # the PSNR of a pair of identical images (instead of infinity), so the mean is defined
DEFAULT_IMAGES = 2048    # as many paired images as the oracle gate
MIN_IMAGES = 16          # below this a t-interval says little; the report notes any count under DEFAULT_IMAGES
KIND = "fidelity"


@dataclass(frozen=True)
class FidelityConfig:
    """Thresholds of the oracle-free gate, on the lower 95% bound of the mean of each metric."""

    min_psnr_db: float = 30.0    # dB; the oracle gate's PSNR floor
    min_ssim: float = 0.90       # SSIM in [-1, 1]; 1 is identical. The shipped shapes64 generator's INT8, which
                                 # the oracle gate passes (no significant drop), measures 0.931 (CI 0.927-0.935)
    images: int = DEFAULT_IMAGES
    seed_offset: int = 10_000    # evaluation seeds never overlap calibration's
    kid: bool = True             # also the distribution check (KID vs the FP32 floor; edge_t2i/eval/kid.py)

    def __post_init__(self) -> None:
        if isinstance(self.images, bool) or not isinstance(self.images, int) or not MIN_IMAGES <= self.images <= 1 << 20:
            raise ConvertError(f"the gate needs between {MIN_IMAGES} and {1 << 20} paired images, got {self.images!r}")
        if self.kid and self.images < MIN_GATE_IMAGES:
            raise ConvertError(f"the KID check needs at least {MIN_GATE_IMAGES} gate images, got --gate-images "
                               f"{self.images}: give more, or --no-kid")
        for name, hi in (("min_psnr_db", MAX_PSNR_DB), ("min_ssim", 1.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= hi:
                raise ConvertError(f"gate {name} must be a number in [0, {hi:g}], got {value!r}")


@dataclass(frozen=True)
class MetricBound:
    """One metric over n paired images: mean, two-sided 95% t-interval, threshold on the lower end."""

    name: str
    n: int
    mean: float
    lower: float
    upper: float
    threshold: float
    passed: bool

    @property
    def margin(self) -> float:
        """How far the lower bound is above the threshold, relative to the threshold's distance from
        the metric's ideal (PSNR: MAX_PSNR_DB; SSIM: 1): comparable across the two metrics."""
        ideal = MAX_PSNR_DB if self.name == "psnr" else 1.0
        return (self.lower - self.threshold) / max(ideal - self.threshold, 1e-12)


@dataclass(frozen=True)
class FidelityResult:
    psnr_db: float        # mean per-image PSNR
    ssim: float           # mean per-image SSIM
    passed: bool
    reason: str
    decided_by: str       # "psnr" or "ssim": the metric that failed, or the nearer to its threshold
    count: int
    metrics: dict         # "psnr" and "ssim" -> MetricBound as a dict
    note: str = ""        # e.g. fewer paired images than the default
    kind: str = KIND
    distribution: dict | None = None  # the KID check (edge_t2i/eval/kid.py), when the gate ran it

    def as_dict(self) -> dict:
        return asdict(self)

    def brief(self) -> dict:
        """What a mixed-precision attempt records."""
        return {"psnr_db": self.psnr_db, "ssim": self.ssim, "psnr_lower": self.metrics["psnr"]["lower"],
                "ssim_lower": self.metrics["ssim"]["lower"], "passed": self.passed}


def eval_pairs(embeddings: np.ndarray | None, config: FidelityConfig) -> tuple[np.ndarray | None, list[int]]:
    """The gate's inputs: `config.images` rows cycling through `embeddings` float32 [P, d] (every prompt
    as often as the next, +-1; None for an unconditional generator), with seeds seed_offset, seed_offset + 1,
    ... (one per image).

    Raises: ConvertError if there are no embeddings."""
    seeds = [config.seed_offset + i for i in range(config.images)]
    if embeddings is None:
        return None, seeds
    if len(embeddings) == 0:
        raise ConvertError("the gate needs at least one evaluation embedding")
    rows = np.arange(config.images) % len(embeddings)
    return np.ascontiguousarray(embeddings[rows], np.float32), [config.seed_offset + i for i in range(config.images)]


def render_pairs(model_path: str | os.PathLike[str], embeddings: np.ndarray | None, seeds: Sequence[int], nz: int,
                 chunk: int = 256) -> np.ndarray:
    """uint8 [N, H, W, 3] images, row i from embeddings[i] (None: unconditional) and seeds[i], through ONNX
    Runtime (CPU); made `chunk` images at a time so a 256 px gate never holds its float32 images all at once.

    Raises: BackendError if ONNX Runtime cannot load or run the model."""
    with OnnxRuntimeBackend(Path(model_path)) as backend:
        parts = [render_backend(backend, None if embeddings is None else embeddings[i:i + chunk],
                                seeds[i:i + chunk], nz, 32)
                 for i in range(0, len(seeds), chunk)]
    return np.concatenate(parts)


def psnr_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [N] PSNR in dB of uint8 images b [N, H, W, C] against a, capped at MAX_PSNR_DB."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = (diff * diff).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(255.0**2 / mse)
    return np.minimum(values, MAX_PSNR_DB)


def ssim_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [N] SSIM of uint8 images b [N, H, W, 3] against a (scikit-image, data range 255, 7x7
    uniform windows, averaged over the channels). Raises: MissingExtraError without scikit-image."""
    metrics = require("skimage.metrics", "convert", "The oracle-free gate's SSIM")
    return np.array([metrics.structural_similarity(x, y, channel_axis=-1, data_range=255) for x, y in zip(a, b)],
                    dtype=np.float64)


def below_thresholds(a: np.ndarray, b: np.ndarray, config: FidelityConfig) -> np.ndarray:
    """bool [N]: which uint8 images b [N, H, W, 3] fall below the PSNR or the SSIM threshold against a,
    one image at a time (the mixed-precision probe ranks layers by how many)."""
    return (psnr_per_image(a, b) < config.min_psnr_db) | (ssim_per_image(a, b) < config.min_ssim)


def mean_bound(values: np.ndarray, name: str, threshold: float) -> MetricBound:
    """Mean of `values` with the two-sided 95% Student-t interval; passes if its lower end >= threshold."""
    stats = require("scipy.stats", "convert", "The oracle-free gate's confidence bound")
    n = len(values)
    mean = float(np.mean(values))
    spread = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    lower, upper = mean - spread, mean + spread
    return MetricBound(name, n, round(mean, 6), round(lower, 6), round(upper, 6), threshold, lower >= threshold)


def judge_pairs(psnr_values: np.ndarray, ssim_values: np.ndarray, config: FidelityConfig) -> FidelityResult:
    """Pass/fail from per-image PSNR and SSIM of INT8 against FP32 (same inputs, row by row).

    Raises: ConvertError if the two differ in length or hold fewer than 2 images."""
    if len(psnr_values) != len(ssim_values) or len(psnr_values) < 2:
        raise ConvertError(f"the gate needs >= 2 paired images with both metrics, got {len(psnr_values)} "
                           f"and {len(ssim_values)}")
    bounds = {"psnr": mean_bound(psnr_values, "psnr", config.min_psnr_db),
              "ssim": mean_bound(ssim_values, "ssim", config.min_ssim)}
    failed = [b for b in bounds.values() if not b.passed]
    decided = min(failed or bounds.values(), key=lambda b: b.margin)
    lines = [_describe(b) for b in bounds.values()]
    n = len(psnr_values)
    note = (f"{n} paired images, fewer than the default {DEFAULT_IMAGES}: the bounds are wider"
            if n < DEFAULT_IMAGES else "")
    reason = "; ".join(lines) + f" (decided by {decided.name.upper()})"
    return FidelityResult(round(bounds["psnr"].mean, 3), round(bounds["ssim"].mean, 5), not failed, reason,
                          decided.name, n, {k: asdict(b) for k, b in bounds.items()}, note)


def _describe(b: MetricBound) -> str:
    unit, fmt = (" dB", ".2f") if b.name == "psnr" else ("", ".4f")
    verdict = ">=" if b.passed else "<"
    return (f"{b.name.upper()} mean {b.mean:{fmt}}{unit}, 95% CI {b.lower:{fmt}} to {b.upper:{fmt}}{unit}: "
            f"lower end {verdict} {b.threshold:g}{unit}")


def judge(images_fp32: np.ndarray, images_int8: np.ndarray, config: FidelityConfig) -> FidelityResult:
    """`judge_pairs` on uint8 [N, H, W, 3] images of FP32 and INT8 for the same (embedding, seed) rows.

    Raises: ConvertError (shapes differ, fewer than 2 images), MissingExtraError (no scikit-image/scipy)."""
    if images_fp32.shape != images_int8.shape:
        raise ConvertError(f"FP32 images {images_fp32.shape} and INT8 images {images_int8.shape} differ in shape")
    return judge_pairs(psnr_per_image(images_fp32, images_int8), ssim_per_image(images_fp32, images_int8), config)
