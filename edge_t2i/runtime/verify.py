"""The device check: before an engine runs a pack on this device for the first time, it renders the pack's
reference set and must match the FP32 images the quality gate compared against.

Engines compute in their own ways (OpenVINO runs an INT8 model's float parts in bf16 on AMX CPUs,
TensorRT fuses kernels and picks tactics per GPU), so the gate's verdict on ONNX Runtime's output does not
carry over by itself. Each engine's images of the reference inputs are compared with the reference FP32
images by mean PSNR and SSIM. It must reach what the gated engine (ONNX Runtime on the CPU) reached with the
same precision's model on the same inputs, less a margin (PSNR: the expected value capped at
PSNR_CAP_DB, less PSNR_MARGIN_DB; SSIM: less SSIM_MARGIN), and never less than the gate's own thresholds
(`min_psnr_db`, `min_ssim`). The margin admits what engines legitimately differ by (TF32 or bf16 rounding,
another INT8 rounding); a shifted, swapped or miscompiled image falls far below it. An engine below is never
chosen (runtime/select.py) and `edge-t2i info` / `tune` say why.

The reference set: `reference.safetensors` in the pack (convert writes it: the FP32 model's uint8 images of
REFERENCE_COUNT fixed inputs), or, for packs written before it, the same inputs rendered here by ONNX
Runtime from the pack's FP32 model, the model the gate used as its reference.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.errors import PackError
from edge_t2i.imaging import to_uint8
from edge_t2i.runtime.backends.base import IOSpec
from edge_t2i.runtime.manifest import PRECISIONS, Manifest
from edge_t2i.runtime.noise import noise
from edge_t2i.runtime.packfile import read_model, read_verified

REFERENCE_COUNT = 16
CHECK_BATCHES = (1, 3)  # the device check also renders the whole set at these batch sizes
MAX_REFERENCE = 64  # images a pack's reference set may hold: the device check renders them all
REFERENCE_FORMAT = "edge-t2i reference v1"
DEFAULT_MIN_PSNR_DB = 30.0   # convert/gate.py GateConfig and convert/fidelity.py FidelityConfig defaults
DEFAULT_MIN_SSIM = 0.90
PSNR_CAP_DB = 50.0           # an FP32 engine is expected at 50 dB or more, not bit-exactness (TF32, FMA, bf16)
PSNR_MARGIN_DB = 6.0         # half the gated engine's pixel error budget twice over (6 dB = 2x the RMS error)
SSIM_MARGIN = 0.02


@dataclass(frozen=True)
class Reference:
    feeds: dict[str, np.ndarray]   # float32 inputs, REFERENCE_COUNT rows each
    images: np.ndarray             # uint8 [N, H, W, C] (C = manifest.channels): the FP32 model's images of `feeds`
    min_psnr_db: float             # the gate's thresholds
    min_ssim: float
    source: str                    # where the images came from, for people
    expected: dict[str, tuple[float, float]]  # precision -> (PSNR dB, SSIM) of the gated engine on this set
    model_files: dict[str, bytes] | None = None  # verified models, to measure `expected` where the pack does not say

    def thresholds(self, precision: str) -> tuple[float, float]:
        """(min PSNR dB, min SSIM) an engine of `precision` must reach (see the module docstring). bf16 (the FP32
        model in bf16) is held to the INT8 model's: a reduced precision the gate did not see may lose no more."""
        if precision == "bf16" and ("int8" in self.expected or "int8" in (self.model_files or {})):
            precision = "int8"
        if precision not in self.expected and self.model_files and precision in self.model_files:
            from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

            with OnnxRuntimeBackend(self.model_files[precision], threads=0, label=f"the {precision} model") as gated:
                h, w = self.images.shape[1:3]
                gated.io = IOSpec({n: int(a.shape[1]) for n, a in self.feeds.items()}, (self.images.shape[3], h, w))
                images = to_uint8(gated.infer(self.feeds)["image"])
            self.expected[precision] = (psnr_db(self.images, images), ssim(self.images, images))
        if precision not in self.expected:  # nothing measured for it: the gate's own thresholds
            return self.min_psnr_db, self.min_ssim
        psnr, sim = self.expected[precision]
        return (max(self.min_psnr_db, min(psnr, PSNR_CAP_DB) - PSNR_MARGIN_DB),
                max(self.min_ssim, sim - SSIM_MARGIN))


@dataclass(frozen=True)
class Verdict:
    passed: bool
    psnr_db: float
    ssim: float
    reason: str
    min_psnr_db: float = 0.0   # the thresholds it was held to
    min_ssim: float = 0.0

    def as_dict(self) -> dict:
        return {"passed": self.passed, "psnr_db": round(self.psnr_db, 2), "ssim": round(self.ssim, 4),
                "reason": self.reason, "min_psnr_db": round(self.min_psnr_db, 2), "min_ssim": round(self.min_ssim, 4)}


def reference_feeds(manifest: Manifest, bank_embeddings: np.ndarray | None) -> dict[str, np.ndarray]:
    """The reference inputs: z of seeds 0..N-1 (the pack's noise) and, for a prompt-conditioned pack, the
    bank's first N embeddings (cycled), or seeded unit vectors where there is no bank."""
    feeds = {"z": noise(list(range(REFERENCE_COUNT)), manifest.nz, manifest.noise)}
    if manifest.conditional:
        emb: np.ndarray
        if bank_embeddings is not None and len(bank_embeddings):
            rows = np.resize(np.arange(len(bank_embeddings)), REFERENCE_COUNT)
            emb = np.asarray(bank_embeddings, np.float32)[rows]
        else:
            emb = np.random.default_rng(0).standard_normal((REFERENCE_COUNT, manifest.embedding_dim))
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        feeds["embedding"] = np.ascontiguousarray(emb, dtype=np.float32)
    return feeds


def thresholds(manifest: Manifest) -> tuple[float, float]:
    """(min PSNR dB, min SSIM) of the pack's gate, else the gate's defaults."""
    raw = manifest.gate.get("config")
    config: dict = raw if isinstance(raw, dict) else {}
    values = []
    for key, default, hi in (("min_psnr_db", DEFAULT_MIN_PSNR_DB, 99.0), ("min_ssim", DEFAULT_MIN_SSIM, 1.0)):
        v = config.get(key, default)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= hi
        values.append(float(v) if ok else default)
    return values[0], values[1]


def write_reference(path: str | os.PathLike[str], feeds: dict[str, np.ndarray], images: np.ndarray,
                    expected: dict[str, tuple[float, float]] | None = None) -> str:
    """Write the reference set (convert calls this with the FP32 model's images and, per precision, the PSNR and
    SSIM ONNX Runtime reaches on it with that precision's model); returns its sha256."""
    tensors = {**{k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()}, "image": images}
    meta = {"format": REFERENCE_FORMAT,
            "expected": json.dumps({p: [round(a, 3), round(b, 5)] for p, (a, b) in (expected or {}).items()})}
    return _io.write_safetensors(path, tensors, meta)


def _expected(meta: dict[str, str]) -> dict[str, tuple[float, float]]:
    try:
        raw = json.loads(meta.get("expected", "{}"))
    except (ValueError, RecursionError):
        raw = None
    if not isinstance(raw, dict):
        raise PackError("reference set: metadata 'expected' must be a JSON object")
    out = {}
    for precision, pair in raw.items():
        if (precision not in PRECISIONS or not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
                or not (0 <= pair[0] <= 100 and -1 <= pair[1] <= 1)):
            raise PackError(f"reference set: expected[{str(precision)[:20]!r}] must be [PSNR dB, SSIM]")
        out[precision] = (float(pair[0]), float(pair[1]))
    return out


def load_reference(manifest: Manifest, bank_embeddings: np.ndarray | None = None) -> Reference:
    """The pack's reference set (see the module docstring). Raises PackError (malformed or altered file)."""
    min_psnr, min_ssim = thresholds(manifest)
    if manifest.reference is None:
        from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

        feeds = reference_feeds(manifest, bank_embeddings)
        if "fp32" not in manifest.models:
            raise PackError("the pack has no FP32 model and no reference set: nothing to check an engine against")
        name = manifest.models["fp32"]
        with OnnxRuntimeBackend(read_model(manifest, name), threads=0, label=name) as fp32:
            fp32.io = IOSpec({n: int(a.shape[1]) for n, a in feeds.items()}, (manifest.channels, manifest.resolution, manifest.resolution))
            images = to_uint8(fp32.infer(feeds)["image"])
        models = {p: read_model(manifest, f) for p, f in manifest.models.items() if p != "fp32"}
        return Reference(feeds, images, min_psnr, min_ssim, f"{name} rendered here by ONNX Runtime",
                         {"fp32": (100.0, 1.0)}, models)
    name = manifest.reference
    try:
        tensors, meta = _io.parse_safetensors(read_verified(manifest, name))
    except ValueError as exc:
        raise PackError(f"reference set {name} is unreadable ({str(exc)[:200]})") from exc
    names = [t.name for t in manifest.inputs]
    image = tensors.get("image")
    want = (manifest.resolution, manifest.resolution, manifest.channels)
    if (meta.get("format") != REFERENCE_FORMAT or set(tensors) != {*names, "image"} or image is None
            or image.dtype != np.uint8 or image.ndim != 4 or image.shape[1:] != want
            or not 1 <= len(image) <= MAX_REFERENCE
            or any(tensors[n].shape != (len(image), t.shape[1]) for n, t in zip(names, manifest.inputs))):
        raise PackError(f"reference set {name} does not match the manifest (inputs {names} -> image "
                        f"uint8 [N, {', '.join(map(str, want))}], N from 1 to {MAX_REFERENCE})")
    feeds = {n: np.ascontiguousarray(tensors[n], np.float32) for n in names}
    return Reference(feeds, np.asarray(image), min_psnr, min_ssim, name, {"fp32": (100.0, 1.0), **_expected(meta)})


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-image PSNR (dB, capped at 100) of uint8 images b [N, H, W, C] against a."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = (diff * diff).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return float(np.minimum(10.0 * np.log10(255.0**2 / mse), 100.0).mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of uint8 images b [N, H, W, C] against a: Wang et al. 2004 with the settings of the gate's
    scikit-image `structural_similarity` (7x7 uniform windows, sample covariance, data range 255, borders of
    3 pixels cropped, averaged over channels), computed with OpenCV box filters."""
    import cv2

    c1, c2, win = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 7
    cov = win * win / (win * win - 1.0)
    values = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        for ch in range(x.shape[-1]):
            f = [cv2.boxFilter(v, -1, (win, win), borderType=cv2.BORDER_REFLECT)
                 for v in (x[..., ch], y[..., ch], x[..., ch] ** 2, y[..., ch] ** 2, x[..., ch] * y[..., ch])]
            ux, uy, uxx, uyy, uxy = f
            vx, vy, vxy = cov * (uxx - ux * ux), cov * (uyy - uy * uy), cov * (uxy - ux * uy)
            s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
            values.append(s[3:-3, 3:-3].mean())
    return float(np.mean(values))


def check_engine(backend: object, reference: Reference, precision: str = "fp32") -> Verdict:
    """Render the reference inputs with `backend` (a runtime Backend) and compare with the reference images: the
    whole set in batches of REFERENCE_COUNT (or the engine's `max_batch`; a smaller set is repeated up to it),
    then the whole set again in batches of each of CHECK_BATCHES (1: a game's frame; 3: a size no route is
    tuned for), because engines may compile each batch size on its own (OpenVINO's static shapes). Each render
    is compared over the same images; PSNR and SSIM are the worst of them.

    Never raises for the engine's own failures: an engine that cannot run the set fails the check."""
    n = len(reference.images)
    step = min(getattr(backend, "max_batch", None) or REFERENCE_COUNT, REFERENCE_COUNT)
    batches = [step] + [b for b in CHECK_BATCHES if b < step]
    try:
        rows = np.arange(max(n, step)) % n  # a set smaller than a batch is repeated, so the batch-16 model runs too
        feeds = {k: v[rows] for k, v in reference.feeds.items()}
        want = reference.images[rows]
        renders = []
        for batch in batches:
            out = np.concatenate([backend.infer({k: v[i:i + batch] for k, v in feeds.items()})["image"]  # type: ignore[attr-defined]
                                  for i in range(0, len(rows), batch)])
            renders.append(to_uint8(np.asarray(out, np.float32)))
            if renders[-1].shape != want.shape:
                return Verdict(False, 0.0, 0.0, f"renders {list(renders[-1].shape)} at batch {batch}, the "
                                                f"reference is {list(want.shape)}")
        p = min(psnr_db(want, r) for r in renders)
        s = min(ssim(want, r) for r in renders)
        min_p, min_s = reference.thresholds(precision)
    except Exception as exc:  # noqa: BLE001 - any failure of the engine (or of the gated one) fails its check
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return Verdict(False, 0.0, 0.0, f"cannot render the reference set ({text})")
    passed = p >= min_p and s >= min_s
    sizes = ", ".join(str(b) for b in batches)
    why = (f"{'matches' if passed else 'DIFFERS FROM'} the FP32 reference ({reference.source}, "
           f"{n} images at batch {sizes}): PSNR {p:.1f} dB, SSIM {s:.4f} (needs >= {min_p:.1f} dB, "
           f">= {min_s:.4f} for {precision})")
    return Verdict(passed, p, s, why, min_p, min_s)


def reference_path(pack_dir: str | os.PathLike[str]) -> Path:
    return Path(pack_dir) / "reference.safetensors"
