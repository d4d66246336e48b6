"""Stage 5: the quality gate. INT8 is compared with FP32, never assumed. Where the gate decides.

Two gates, one interface (`Gate`): the conversion renders FP32 once (`reference`), then asks `judge(model)`
of each INT8 candidate and `probe(model)` for the mixed-precision ranking. Which gate a conversion gets:

- `OracleGate` (below), for generators trained on this project's shapes data: the attribute oracle judges
  what each image shows.
- `FidelityGate` (below, metrics in convert/fidelity.py and edge_t2i/eval/kid.py), for every other
  generator: PSNR and SSIM of INT8 against FP32 on paired images, and KID of INT8 images against FP32 images
  from disjoint seeds, held to the FP32-vs-FP32 sampling floor.

The oracle gate: on a fixed evaluation set (128 prompts x 16 seeds = 2,048 images by default, prompts and seeds
not used for calibration), both models render the same (prompt, seed) pairs. The gate checks the
PSNR of the INT8 images against the FP32 ones, and, image by image, the attribute oracle's verdict
under both: for "all four attributes right" and for each attribute, the upper end of the 95%
confidence interval of INT8's paired accuracy drop (convert/paired.py) must be at most the margin.
At n = 2,048 a model with no loss passes about 99.7% of the time and one with a true 2-point loss
fails about 97% of the time (tests/convert/test_paired.py); at the old 256 images neither held.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_t2i.convert import fidelity
from edge_t2i.convert.paired import paired_drop
from edge_t2i.data import vocab
from edge_t2i.errors import ConvertError
from edge_t2i.eval import oracle
from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_t2i.runtime.pipeline import render as render_backend

MIN_POWERED_IMAGES = 1024  # below this, even identical models may not bound a drop under 2 points


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate; drops are fractions (0.01 = one percentage point)."""

    min_psnr_db: float = 30.0
    max_all_drop: float = 0.02        # margin: upper 95% bound of the drop of "all four right"
    max_attribute_drop: float = 0.03  # and of each attribute's (color, shape, size, position)
    seeds_per_prompt: int = 16        # 128 evaluation prompts x 16 = 2,048 paired images
    seed_offset: int = 10_000         # evaluation seeds never overlap calibration's

    def __post_init__(self) -> None:
        if self.seeds_per_prompt < 1:
            raise ConvertError("the gate needs at least one seed per prompt")
        for name in ("min_psnr_db", "max_all_drop", "max_attribute_drop"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConvertError(f"gate {name} must be a finite number >= 0, got {value!r}")


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
    fp32: dict        # accuracy per attribute and "all" (fractions)
    int8: dict
    all_drop: float   # fp32["all"] - int8["all"]
    passed: bool
    reason: str
    count: int
    drops: dict = field(default_factory=dict)  # "all" and each attribute -> PairedDrop.as_dict()

    def as_dict(self) -> dict:
        return asdict(self)

    def brief(self) -> dict:
        """What a mixed-precision attempt records."""
        return {"psnr_db": self.psnr_db, "all_fp32": self.fp32["all"], "all_int8": self.int8["all"],
                "passed": self.passed}


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

    Fails when PSNR < min_psnr_db, or the upper 95% confidence bound of the paired drop of 'all four
    right' exceeds max_all_drop, or any attribute's exceeds max_attribute_drop; `reason` names every
    failed check with its interval. Raises: DataError if there are no images."""
    v32 = oracle.image_verdicts(images_fp32, eval_set.rows)
    v8 = oracle.image_verdicts(images_int8, eval_set.rows)
    drops = {}
    for key in ("all", *vocab.ATTRIBUTES):
        named = v32[key] >= 0  # an attribute the caption does not name is not scored
        if named.any():
            drops[key] = paired_drop(v32[key][named] == 1, v8[key][named] == 1)
    value = psnr(images_fp32, images_int8)
    problems = [f"PSNR {value:.1f} dB < {config.min_psnr_db:g} dB"] if not value >= config.min_psnr_db else []
    for key, d in drops.items():
        margin = config.max_all_drop if key == "all" else config.max_attribute_drop
        if not d.upper <= margin:
            problems.append(f"'{key}' dropped {d.drop:+.1%} (95% CI {d.lower:+.1%} to {d.upper:+.1%}; "
                            f"the upper end must be <= {margin:.0%})")
    d_all = drops["all"]
    undecided = [k for k, d in drops.items()
                 if d.drop <= (config.max_all_drop if k == "all" else config.max_attribute_drop) < d.upper]
    if undecided and d_all.n < MIN_POWERED_IMAGES:  # the drop itself is within the margin, its interval is not
        problems.append(f"only {d_all.n} paired images: too few to bound the drop within the margin; use more "
                        f"--eval-prompts or --gate-seeds (the default gate has {128 * GateConfig().seeds_per_prompt})")
    reason = "; ".join(problems) or (
        f"PSNR {value:.1f} dB >= {config.min_psnr_db:g} dB; 'all' drop {d_all.drop:+.1%} (95% CI {d_all.lower:+.1%} "
        f"to {d_all.upper:+.1%}) <= {config.max_all_drop:.0%}; each attribute's <= {config.max_attribute_drop:.0%}")
    accuracy = {k: {"fp32": d.fp32, "int8": d.int8} for k, d in drops.items()}
    return GateResult(round(value, 3), {k: a["fp32"] for k, a in accuracy.items()},
                      {k: a["int8"] for k, a in accuracy.items()}, round(d_all.drop, 4), not problems, reason,
                      d_all.n, {k: d.as_dict() for k, d in drops.items()})


# ---- the interface both gates implement -------------------------------------------------------------------
PROBE_IMAGES = 512   # paired images per mixed-precision probe: the gate's first (prompt, seed) pairs
COMPARE_IMAGES = 16  # FP32 / INT8 pairs shown in compare.png


class Verdict(Protocol):
    passed: bool
    reason: str

    def as_dict(self) -> dict: ...

    def brief(self) -> dict: ...


class Gate(Protocol):
    """What the INT8 stage (convert/mixed.py) asks of a quality gate."""

    kind: str     # "oracle" | "fidelity"
    probed: str   # what `probe` counts, for the log and the manifest
    fp32_images: np.ndarray  # uint8 [N, H, W, 3], set by `reference`

    def reference(self, fp32: Path) -> None:
        """Render the FP32 model's images once (every later call compares against them)."""

    def judge(self, model: Path) -> Verdict:
        """Pass or fail of `model` (an INT8 candidate) against the FP32 reference."""

    def probe(self, model: Path) -> int:
        """How many of the first PROBE_IMAGES images of `model` disagree with FP32 (the lower, the better)."""

    def samples(self, model: Path) -> np.ndarray:
        """uint8 [COMPARE_IMAGES, H, W, 3] images of `model` for compare.png (FP32's: the same inputs)."""

    def record(self) -> dict[str, Any]:
        """The gate's configuration and inputs for the manifest."""


class OracleGate:
    """The attribute-oracle gate (module docstring) on `prompts` x `config.seeds_per_prompt` seeds."""

    kind, probed = "oracle", "oracle verdicts"

    def __init__(self, prompts: list[str], embeddings: np.ndarray, nz: int, config: GateConfig):
        self.config, self.nz, self.prompts = config, nz, prompts
        self.eval_set = EvalSet.build(prompts, embeddings, config)
        self.probe_set = _head(self.eval_set, PROBE_IMAGES)

    def reference(self, fp32: Path) -> None:
        self.fp32_images = render(fp32, self.eval_set, self.nz)
        self.probe_fp32 = oracle.image_verdicts(self.fp32_images[:PROBE_IMAGES], self.probe_set.rows)["all"]

    def judge(self, model: Path) -> GateResult:
        return judge(self.fp32_images, render(model, self.eval_set, self.nz), self.eval_set, self.config)

    def probe(self, model: Path) -> int:  # images whose 'all four right' verdict differs from FP32's
        verdicts = oracle.image_verdicts(render(model, self.probe_set, self.nz), self.probe_set.rows)["all"]
        return int((verdicts != self.probe_fp32).sum())

    def samples(self, model: Path) -> np.ndarray:
        return render(model, _head(self.eval_set, COMPARE_IMAGES), self.nz)

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": asdict(self.config), "eval_prompts": len(self.prompts)}


def _head(eval_set: EvalSet, n: int) -> EvalSet:
    return EvalSet(eval_set.prompts[:n], eval_set.embeddings[:n], eval_set.seeds[:n], eval_set.rows[:n])


class FidelityGate:
    """The gate without an oracle: paired PSNR/SSIM bounds (convert/fidelity.py) and, with `config.kid`, the
    distribution check (edge_t2i/eval/kid.py): Inception features of FP32 images from seeds A (seed_offset +
    images ...) against FP32 and INT8 images from seeds B (the paired ones); INT8 passes when KID(A, INT8 B)
    stays within the confidence margin of the floor KID(A, FP32 B). `embeddings` None: an unconditional generator.
    """

    kind, probed = "fidelity", "per-image PSNR/SSIM verdicts"

    def __init__(self, embeddings: np.ndarray | None, nz: int, config: fidelity.FidelityConfig, calib_prompts: int = 0):
        self.config, self.nz, self.calib_prompts = config, nz, calib_prompts
        self.prompts = 0 if embeddings is None else len(embeddings)
        self.embeddings, self.seeds = fidelity.eval_pairs(embeddings, config)

    def _render(self, model: Path, n: int | None = None, seeds: list[int] | None = None) -> np.ndarray:
        seeds = (seeds or self.seeds)[:n]
        emb = None if self.embeddings is None else self.embeddings[:len(seeds)]
        return fidelity.render_pairs(model, emb, seeds, self.nz)

    def reference(self, fp32: Path) -> None:
        self.fp32_images = self._render(fp32)
        self.floor_features = self.fp32_features = None
        self._last: tuple[str, fidelity.FidelityResult] | None = None  # (sha256 of a candidate's pixels, verdict)
        if self.config.kid:
            from edge_t2i.eval import kid

            logging.getLogger("edge_t2i").info(
                "  [gate     ]          KID: Inception features of %d FP32 images, then %d per INT8 candidate "
                "(minutes on a CPU; --gate-images sets the count, --no-kid skips the check)",
                2 * self.config.images, self.config.images)
            floor_seeds = [s + self.config.images for s in self.seeds]  # seeds A: disjoint from B
            self.floor_features = kid.inception_features(self._render(fp32, seeds=floor_seeds), progress=True)
            self.fp32_features = kid.inception_features(self.fp32_images, progress=True)

    def judge(self, model: Path) -> fidelity.FidelityResult:
        images = self._render(model)
        digest = hashlib.sha256(images.tobytes()).hexdigest()
        if self._last is not None and self._last[0] == digest:  # e.g. the u8s8 variant: the same pixels
            return self._last[1]
        result = fidelity.judge(self.fp32_images, images, self.config)
        if self.config.kid:
            from edge_t2i.eval import kid

            check = kid.distribution_check(self.floor_features, self.fp32_features,
                                           kid.inception_features(images, progress=True), with_fid=False)
            result = replace(result, passed=result.passed and check.passed,
                             reason=f"{result.reason}; {check.reason}", distribution=check.as_dict())
        self._last = (digest, result)
        return result

    def probe(self, model: Path) -> int:  # paired images below a per-image threshold (PSNR or SSIM)
        n = min(PROBE_IMAGES, len(self.seeds))
        return int(fidelity.below_thresholds(self.fp32_images[:n], self._render(model, n), self.config).sum())

    def samples(self, model: Path) -> np.ndarray:
        return self._render(model, COMPARE_IMAGES)

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": asdict(self.config), "eval_prompts": self.prompts,
                "calib_prompts": self.calib_prompts}
