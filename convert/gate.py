"""Stage 5: the quality gate. INT8 is compared with FP32, never assumed.

On a fixed evaluation set (prompts x seeds not used for calibration), both models render
the same (prompt, seed) pairs; the gate compares the PSNR of the INT8 images against the
FP32 ones and the attribute oracle's accuracy on both (all four attributes, and each).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_t2i.data import vocab
from edge_t2i.errors import ConvertError
from edge_t2i.eval import oracle
from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_t2i.runtime.pipeline import render as render_backend


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate; drops are fractions (0.01 = one percentage point)."""

    min_psnr_db: float = 30.0
    max_all_drop: float = 0.01   # "all attributes correct" may drop by at most 1 percentage point
    max_attribute_drop: float = 0.03  # and each attribute (color, shape, size, position) by at most 3
    seeds_per_prompt: int = 2
    seed_offset: int = 10_000    # evaluation seeds never overlap calibration's

    def __post_init__(self) -> None:
        if self.seeds_per_prompt < 1:
            raise ConvertError("the gate needs at least one seed per prompt")


@dataclass(frozen=True)
class EvalSet:
    prompts: list[str]
    embeddings: np.ndarray   # [N, dim], one row per (prompt, seed)
    seeds: list[int]
    rows: list[dict]         # {"text": prompt} for the oracle's caption parser

    @classmethod
    def build(cls, prompts: list[str], embeddings: np.ndarray, config: GateConfig) -> EvalSet:
        k = config.seeds_per_prompt
        seeds = [config.seed_offset + i for i in range(len(prompts) * k)]
        texts = [p for p in prompts for _ in range(k)]
        return cls(texts, np.repeat(embeddings, k, axis=0), seeds, [{"text": t} for t in texts])


@dataclass(frozen=True)
class GateResult:
    psnr_db: float
    fp32: dict
    int8: dict
    all_drop: float
    passed: bool
    reason: str
    count: int

    def as_dict(self) -> dict:
        return asdict(self)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of uint8 images `b` against `a` (over all pixels)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def render(model_path: str | os.PathLike[str], eval_set: EvalSet, nz: int, batch: int = 32) -> np.ndarray:
    """uint8 [N, H, W, 3] images of every (prompt, seed) of the evaluation set, through ONNX Runtime (CPU).

    Raises: BackendError if ONNX Runtime cannot load or run the model."""
    with OnnxRuntimeBackend(Path(model_path)) as backend:
        return render_backend(backend, eval_set.embeddings, eval_set.seeds, nz, batch)


def judge(images_fp32: np.ndarray, images_int8: np.ndarray, eval_set: EvalSet, config: GateConfig) -> GateResult:
    """Pass/fail of INT8 against FP32 on the same (prompt, seed) pairs: uint8 [N, H, W, 3] each.

    Fails when PSNR < min_psnr_db, or the drop of 'all attributes correct' exceeds max_all_drop,
    or any attribute's drop exceeds max_attribute_drop; `reason` names every failed check.
    Raises: DataError if there are no images."""
    s32 = oracle.score_images(images_fp32, eval_set.rows)
    s8 = oracle.score_images(images_int8, eval_set.rows)
    value = psnr(images_fp32, images_int8)
    drop = s32.all - s8.all
    problems = []
    if value < config.min_psnr_db:
        problems.append(f"PSNR {value:.1f} dB < {config.min_psnr_db:g} dB")
    if drop > config.max_all_drop + 1e-9:
        problems.append(f"'all attributes' dropped {drop:.1%} > {config.max_all_drop:.0%}")
    for attr in vocab.ATTRIBUTES:
        attr_drop = getattr(s32, attr) - getattr(s8, attr)
        if attr_drop > config.max_attribute_drop + 1e-9:
            problems.append(f"{attr} dropped {attr_drop:.1%} > {config.max_attribute_drop:.0%}")
    reason = "; ".join(problems) or (f"PSNR {value:.1f} dB >= {config.min_psnr_db:g} dB, "
                                     f"'all' drop {drop:+.1%} <= {config.max_all_drop:.0%}, "
                                     f"each attribute's <= {config.max_attribute_drop:.0%}")
    return GateResult(round(value, 3), s32.as_dict(), s8.as_dict(), round(drop, 4), not problems, reason, s32.count)
