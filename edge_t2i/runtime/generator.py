"""`load(pack)` -> Generator: prompts (or embeddings) + seeds -> uint8 images.

Torch-free. z comes from NumPy's seeded generator, so the same seed gives the
same image on every backend and a game can re-create an asset from its seed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i.errors import BackendError, InputError, MissingExtraError, PackError, did_you_mean
from edge_t2i.runtime import backends
from edge_t2i.runtime.bank import POLICIES, PromptBank, UnknownPolicy
from edge_t2i.runtime.pack import PRECISIONS, Manifest, read_manifest, verify_file

log = logging.getLogger("edge_t2i.runtime")
BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime")
MAX_BATCH = 256


def noise(seeds: Sequence[int], nz: int) -> np.ndarray:
    """float32 [B, nz]: one standard-normal row per seed (PCG64), identical on every platform."""
    out = np.empty((len(seeds), nz), np.float32)
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise InputError(f"seeds must be non-negative integers, got {s!r}")
        out[i] = np.random.default_rng(int(s)).standard_normal(nz, dtype=np.float32)
    return out


def to_uint8(images: np.ndarray, bgr: bool = False) -> np.ndarray:
    """[-1, 1] float [B, 3, H, W] -> uint8 [B, H, W, 3] (RGB, or BGR for OpenCV)."""
    x = np.clip(images, -1.0, 1.0)
    x = np.rint((x + 1.0) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x[..., ::-1] if bgr else x)


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    reason: str


def _engine_for_here(manifest: Manifest, precision: str) -> tuple[Path | None, str]:
    """The engine built for this GPU and TensorRT version, or why none fits."""
    candidates = [e for e in manifest.engines if e.precision == precision]
    if not candidates:
        return None, f"the pack has no {precision} TensorRT engine"
    try:
        from edge_t2i.runtime.backends.tensorrt import gpu_identity

        version, cc = gpu_identity()
    except (BackendError, MissingExtraError) as exc:
        return None, f"TensorRT unavailable ({exc})"
    for e in candidates:
        if e.tensorrt_version == version and e.compute_capability == cc:
            return verify_file(manifest, e.file), f"engine {e.file} matches TensorRT {version} on sm{cc}"
    built = ", ".join(f"TensorRT {e.tensorrt_version} sm{e.compute_capability}" for e in candidates)
    return None, (f"the pack's engines were built for {built}, this machine has TensorRT {version} sm{cc}: "
                  "rebuild with edge-t2i convert --engine on this device")


def select_backend(manifest: Manifest, backend: str, precision: str, threads: int) -> tuple[backends.Backend, Choice]:
    if backend not in BACKEND_CHOICES:
        raise BackendError(did_you_mean(backend, BACKEND_CHOICES, "backend"))
    if precision not in PRECISIONS:
        raise BackendError(did_you_mean(precision, PRECISIONS, "precision"))
    reasons = []
    if backend in ("auto", "tensorrt"):
        path, why = _engine_for_here(manifest, precision)
        if path is not None:
            entry = next(e for e in manifest.engines if e.file == path.name)
            b = backends.create("tensorrt", engine_path=path, precision=precision,
                                input_dims={"z": manifest.nz, "embedding": manifest.embedding_dim},
                                output_shape=(3, manifest.resolution, manifest.resolution), max_batch=entry.max_batch)
            return b, Choice("tensorrt", precision, why)
        if backend == "tensorrt":
            raise BackendError(f"cannot use TensorRT: {why}")
        reasons.append(why)
    if precision not in manifest.models:
        raise PackError(f"the pack has no {precision} model (has: {', '.join(sorted(manifest.models))})")
    model = verify_file(manifest, manifest.models[precision])
    if backend in ("auto", "onnxruntime-cuda"):
        try:
            b = backends.create("onnxruntime", model_path=model, precision=precision, device="cuda", threads=threads)
            return b, Choice("onnxruntime-cuda", precision, "; ".join([*reasons, "ONNX Runtime CUDA provider"]))
        except BackendError as exc:
            if backend == "onnxruntime-cuda":
                raise
            reasons.append(str(exc))
    b = backends.create("onnxruntime", model_path=model, precision=precision, device="cpu", threads=threads)
    return b, Choice("onnxruntime", precision, "; ".join([*reasons, "ONNX Runtime on the CPU"]))


class Generator:
    """A loaded pack: thread-safe `generate`, warmed up at load."""

    def __init__(self, manifest: Manifest, backend: backends.Backend, choice: Choice, bank: PromptBank | None):
        self.manifest = manifest
        self.backend = backend
        self.choice = choice
        self.bank = bank
        self._lock = None if backend.thread_safe else threading.Lock()

    @property
    def resolution(self) -> int:
        return self.manifest.resolution

    @property
    def nz(self) -> int:
        return self.manifest.nz

    def embeddings_for(self, prompts: Sequence[str], unknown: UnknownPolicy | None = None) -> np.ndarray:
        if self.bank is None:
            raise PackError("this pack has no prompt bank: pass embeddings instead of prompts")
        policy = unknown or ("encode" if self.bank.encoder is not None else "error")
        if policy not in POLICIES:
            raise InputError(did_you_mean(str(policy), POLICIES, "unknown-prompt policy"))
        return np.stack([self.bank.lookup(p, policy) for p in prompts])

    def generate(self, prompts_or_embeddings: str | Sequence[str] | np.ndarray, seeds: Sequence[int] | int | None = None,
                 z: np.ndarray | None = None, bgr: bool = False, unknown: UnknownPolicy | None = None,
                 raw: bool = False) -> np.ndarray:
        """uint8 [B, H, W, 3] images (or the raw float [B, 3, H, W] in [-1, 1] with raw=True).

        `prompts_or_embeddings`: a prompt, a list of prompts (looked up in the bank), or
        float embeddings [B, dim]. `seeds` (default 0..B-1) give z unless `z` is passed.
        """
        emb = self._embeddings(prompts_or_embeddings, unknown)
        batch = emb.shape[0]
        if z is None:
            seed_list = self._seed_list(seeds, batch)
            if batch == 1 and len(seed_list) > 1:  # one prompt, many seeds
                emb = np.repeat(emb, len(seed_list), axis=0)
                batch = len(seed_list)
            z = noise(seed_list, self.nz)
        z = self._check(np.asarray(z), "z", (batch, self.nz))
        out = self._infer({"z": z, "embedding": emb})
        return out if raw else to_uint8(out, bgr)

    @staticmethod
    def _seed_list(seeds: Sequence[int] | int | None, batch: int) -> list[int]:
        if seeds is None:
            return list(range(batch))
        if isinstance(seeds, (int, np.integer)):
            return [int(seeds)] * batch
        seed_list = list(seeds)
        if len(seed_list) == 1:
            return seed_list * batch
        if len(seed_list) != batch and batch != 1:
            raise InputError(f"{len(seed_list)} seeds for {batch} prompts: give one seed, or one per prompt")
        return seed_list

    def _embeddings(self, x: str | Sequence[str] | np.ndarray, unknown: UnknownPolicy | None) -> np.ndarray:
        if isinstance(x, str):
            x = [x]
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            emb = x[None, :] if x.ndim == 1 else x
            return self._check(emb, "embedding", (emb.shape[0], self.manifest.embedding_dim))
        items = list(x)
        if not items:
            raise InputError("nothing to generate: batch size 0")
        if not all(isinstance(p, str) for p in items):
            raise InputError("pass prompts as strings or embeddings as a float array [B, dim]")
        return self.embeddings_for(items, unknown)

    def _check(self, arr: np.ndarray, name: str, shape: tuple[int, int]) -> np.ndarray:
        if arr.ndim != 2 or arr.shape[1] != shape[1] or arr.shape[0] != shape[0]:
            raise InputError(f"{name} must have shape [{shape[0]}, {shape[1]}], got {list(arr.shape)}")
        if arr.shape[0] == 0:
            raise InputError("nothing to generate: batch size 0")
        limit = self.backend.max_batch or MAX_BATCH
        if arr.shape[0] > limit:
            raise InputError(f"batch {arr.shape[0]} exceeds the limit of {limit} for {self.backend.describe()}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise InputError(f"{name} contains NaN or inf")
        return arr

    def _infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._lock is None:
            return self.backend.infer(feeds)["image"]
        with self._lock:
            return self.backend.infer(feeds)["image"]

    def warm_up(self, batches: Sequence[int] = (1,)) -> float:
        """Run each batch size once so the first frame is not the slow one; returns seconds."""
        t0 = time.perf_counter()
        for b in batches:
            self._infer({"z": np.zeros((b, self.nz), np.float32),
                         "embedding": np.zeros((b, self.manifest.embedding_dim), np.float32)})
        return time.perf_counter() - t0

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Generator({self.manifest.root}, {self.choice.backend} {self.choice.precision}, "
                f"{self.resolution}px, bank={len(self.bank) if self.bank else 0})")


def load_bank(manifest: Manifest) -> PromptBank | None:
    if manifest.bank is None:
        return None
    encoder = None
    if manifest.encoder is not None:
        from edge_t2i.runtime.encoder import OnnxTextEncoder

        encoder = OnnxTextEncoder(verify_file(manifest, manifest.encoder["model"]),
                                  verify_file(manifest, manifest.encoder["tokenizer"]))
    return PromptBank.load(verify_file(manifest, manifest.bank), encoder)


def load(pack_dir: str | os.PathLike[str], backend: str = "auto", precision: str = "int8", threads: int = 0,
         warm_up: bool = True) -> Generator:
    """Load a pack. `backend`: auto | tensorrt | onnxruntime-cuda | onnxruntime."""
    manifest = read_manifest(pack_dir)
    be, choice = select_backend(manifest, backend, precision, threads)
    log.info("edge-t2i: %s %s (%s)", choice.backend, choice.precision, choice.reason)
    gen = Generator(manifest, be, choice, load_bank(manifest))
    if warm_up:
        gen.warm_up()
    return gen
