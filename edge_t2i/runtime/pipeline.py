"""`load(pack)` -> Pipeline: prompts (or embeddings) + seeds -> uint8 images, torch-free.

The runtime's Pipeline: bank lookup -> noise from seeds -> backend inference ->
uint8 pixels. z comes from `noise`, so the same seed gives the same image on
every backend and a game can re-create an asset from its seed.
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

from edge_t2i.errors import BackendError, InputError, PackError, did_you_mean
from edge_t2i.imaging import to_uint8
from edge_t2i.runtime import backends, cpu
from edge_t2i.runtime.bank import PromptBank, TextEncoder, UnknownPolicy, check_policy
from edge_t2i.runtime.manifest import PRECISIONS, Manifest, read_manifest, verify_file
from edge_t2i.runtime.noise import PORTABLE, noise

log = logging.getLogger(__name__)
BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime")
MAX_BATCH = 256


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    reason: str


def select_backend(manifest: Manifest, backend: str, precision: str, threads: int) -> tuple[backends.Backend, Choice]:
    """The backend that runs `precision` here: for "auto", a TensorRT engine built for this GPU, else ONNX
    Runtime's CUDA provider, else ONNX Runtime on the CPU; each skipped option's reason goes into `Choice`.

    Raises: BackendError (unknown name or precision; an explicitly asked backend that cannot run here),
    PackError (the pack has no model of that precision, or a file fails its sha256)."""
    if backend not in BACKEND_CHOICES:
        raise BackendError(did_you_mean(backend, BACKEND_CHOICES, "backend"))
    if precision not in PRECISIONS:
        raise BackendError(did_you_mean(precision, PRECISIONS, "precision"))
    reasons = []
    if backend in ("auto", "tensorrt"):
        from edge_t2i.runtime.backends.tensorrt import find_engine

        entry, why = find_engine(manifest.engines, precision)
        if entry is not None:
            b = backends.create("tensorrt", engine_path=verify_file(manifest, entry.file), precision=precision,
                                input_dims=input_dims(manifest),
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
    cpu_model, cpu_note = cpu_model_for(manifest, precision)  # only now: a CUDA run never needs the CPU variant
    b = backends.create("onnxruntime", model_path=cpu_model, precision=precision, device="cpu", threads=threads)
    return b, Choice("onnxruntime", precision, "; ".join([*reasons, f"ONNX Runtime on the CPU{cpu_note}"]))


def input_dims(manifest: Manifest) -> dict[str, int]:
    """Feature size of each generator input: {"z": nz} (+ "embedding": d for a sentence-conditioned pack)."""
    return {t.name: int(t.shape[1]) for t in manifest.inputs}


def cpu_model_for(manifest: Manifest, precision: str) -> tuple[Path, str]:
    """The model ONNX Runtime runs on this CPU, and a note on why: the pack's CPU variant of `precision`
    where this CPU has one of the flags it requires (runtime/cpu.py), else the pack's model.
    Raises: PackError (a file missing or failing its sha256)."""
    variant = manifest.cpu_variants.get(precision)
    flags = cpu.cpu_flags()
    if variant is None:
        return verify_file(manifest, manifest.models[precision]), ""
    have = [f for f in variant.requires_any if f in flags]
    if not have:
        return (verify_file(manifest, manifest.models[precision]),
                f" ({precision}; this CPU lacks {'/'.join(variant.requires_any)} for {variant.file})")
    return verify_file(manifest, variant.file), f" ({variant.file}: this CPU has {have[0]})"


class Pipeline:
    """A loaded pack: prompt bank + backend behind one thread-safe `generate`.

    Build it with `load(pack)`. Attributes: `manifest`, `backend`, `choice` (which backend
    and why), `bank` (None if the pack has none), `resolution` (pixels), `nz`."""

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

    @property
    def max_batch(self) -> int:
        """The largest batch one `generate` call takes here (a TensorRT profile may end below MAX_BATCH)."""
        return self.backend.max_batch or MAX_BATCH

    def embeddings_for(self, prompts: Sequence[str], unknown: UnknownPolicy | None = None) -> np.ndarray:
        """float32 [len(prompts), dim] bank embeddings; prompts not in the bank follow `unknown`
        (default: "encode" if the pack has a text encoder, else "error"; see `PromptBank.lookup`).

        Raises: PackError (no bank), InputError (unknown prompt under "error", bad policy)."""
        if not self.conditional:
            raise InputError("this pack's generator is unconditional: it takes no prompts, only seeds")
        if self.bank is None:
            raise PackError("this pack has no prompt bank: pass embeddings instead of prompts")
        policy = check_policy(unknown or ("encode" if self.bank.encoder is not None else "error"))
        return np.stack([self.bank.lookup(p, policy) for p in prompts])

    def generate(self, prompts_or_embeddings: str | Sequence[str] | np.ndarray | None = None,
                 seeds: Sequence[int] | int | None = None, z: np.ndarray | None = None, bgr: bool = False,
                 unknown: UnknownPolicy | None = None, raw: bool = False) -> np.ndarray:
        """Images for prompts or embeddings: uint8 [B, H, W, 3] RGB (BGR with `bgr=True`), or with
        `raw=True` the generator's float32 [B, 3, H, W] in [-1, 1].

        `prompts_or_embeddings`: a prompt, a list of B prompts (looked up in the bank, see
        `embeddings_for`), or float embeddings [B, dim] (L2-normalised sentence vectors); None for an
        unconditional pack (`conditional` False), which draws from the seeds alone.
        `seeds`: one seed, or one per row (default 0..B-1); with one prompt and several seeds,
        B = len(seeds). They become z through `noise`; pass `z` float32 [B, nz] to skip that.
        Raises: InputError (empty batch, wrong shapes, NaN/inf, batch over the backend's limit,
        bad seeds, unknown prompt, a prompt for an unconditional pack or none for a conditional one),
        PackError (no bank), BackendError (inference failed).
        """
        if not self.conditional:
            return self._generate_unconditional(prompts_or_embeddings, seeds, z, bgr, raw)
        if prompts_or_embeddings is None:
            raise InputError("this pack draws what a prompt says: pass a prompt, prompts or embeddings")
        emb = self._embeddings(prompts_or_embeddings, unknown)
        batch = emb.shape[0]
        if z is None:
            seed_list = self._seed_list(seeds, batch)
            if batch == 1 and len(seed_list) > 1:  # one prompt, many seeds
                emb = np.repeat(emb, len(seed_list), axis=0)
                batch = len(seed_list)
            z = noise(seed_list, self.nz, self.manifest.noise)
        z = self._check(np.asarray(z), "z", (batch, self.nz))
        out = self._infer({"z": z, "embedding": emb})
        return out if raw else to_uint8(out, bgr)

    @property
    def conditional(self) -> bool:
        """False for an unconditional generator (noise alone -> image): `generate` takes seeds, no prompts."""
        return self.manifest.conditional

    def _generate_unconditional(self, prompts: object, seeds: Sequence[int] | int | None, z: np.ndarray | None,
                                bgr: bool, raw: bool) -> np.ndarray:
        if prompts is not None:
            raise InputError("this pack's generator is unconditional (noise alone -> image): it takes no prompt; "
                             "pass seeds only, e.g. generate(seeds=range(16))")
        if z is None:
            seed_list = self._seed_list(0 if seeds is None else seeds, 1)  # batch 1 takes any number of seeds
            if not seed_list:
                raise InputError("nothing to generate: no seeds")
            z = noise(seed_list, self.nz, self.manifest.noise)
        z = np.asarray(z)
        z = self._check(z, "z", (len(z) if z.ndim == 2 else 1, self.nz))
        out = self._infer({"z": z})
        return out if raw else to_uint8(out, bgr)

    @staticmethod
    def _seed_list(seeds: Sequence[int] | int | None, batch: int) -> list[int]:
        if seeds is None:
            return list(range(batch))
        if isinstance(seeds, np.ndarray) and seeds.ndim == 0:
            seeds = seeds.item()
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            return [int(seeds)] * batch
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
            raise InputError(f"seeds must be an integer or a sequence of integers, got {type(seeds).__name__}")
        seed_list = list(seeds)  # type: ignore[arg-type]  # a bool seed is refused by noise()
        if len(seed_list) == 1:
            return seed_list * batch
        if len(seed_list) != batch and batch != 1:
            raise InputError(f"{len(seed_list)} seeds for {batch} prompts: give one seed, or one per prompt")
        return seed_list

    def _embeddings(self, x: str | Sequence[str] | np.ndarray, unknown: UnknownPolicy | None) -> np.ndarray:
        if isinstance(x, str):
            x = [x]
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim in (1, 2):
            emb = x[None, :] if x.ndim == 1 else x
            return self._check(emb, "embedding", (emb.shape[0], self.manifest.embedding_dim))
        if not isinstance(x, (list, tuple)):
            raise InputError(f"pass a prompt, a list of prompts, or float embeddings [B, "
                             f"{self.manifest.embedding_dim}]; got {type(x).__name__}"
                             f"{f' of shape {list(x.shape)}' if isinstance(x, np.ndarray) else ''}")
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
        limit = self.max_batch
        if arr.shape[0] > limit:
            raise InputError(f"batch {arr.shape[0]} exceeds the limit of {limit} for {self.backend.describe()}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise InputError(f"{name} contains NaN or inf")
        return arr

    def _infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._lock is None:
            out = self.backend.infer(feeds)["image"]
        else:
            with self._lock:
                out = self.backend.infer(feeds)["image"]
        if not np.isfinite(out).all():  # garbage pixels are not an image: say so
            raise BackendError(f"{self.backend.describe()} produced NaN/inf pixels: the pack's weights are broken; "
                               "re-convert from a healthy checkpoint")
        return out

    def warm_up(self, batches: Sequence[int] = (1,)) -> float:
        """Run each batch size once so the first frame is not the slow one; returns seconds."""
        t0 = time.perf_counter()
        for b in batches:
            self._infer({name: np.zeros((b, size), np.float32) for name, size in input_dims(self.manifest).items()})
        return time.perf_counter() - t0

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Pipeline({self.manifest.root}, {self.choice.backend} {self.choice.precision}, "
                f"{self.resolution}px, bank={len(self.bank) if self.bank else 0})")


def load_bank(manifest: Manifest) -> PromptBank | None:
    """The pack's prompt bank (with its ONNX text encoder if the pack has one, loaded when a prompt
    first needs it, so prompts in the bank work without the `encoder` extra), or None.

    Raises: PackError (missing or altered file)."""
    if manifest.bank is None:
        return None
    encoder: TextEncoder | None = None
    if manifest.encoder is not None:
        from edge_t2i.runtime.encoder import LazyTextEncoder

        encoder = LazyTextEncoder(verify_file(manifest, manifest.encoder["model"]),
                                  verify_file(manifest, manifest.encoder["tokenizer"]))
        if "reader" in manifest.encoder:
            from edge_t2i.runtime.reader import PhraseReadingEncoder

            words = manifest.raw.get("model", {}).get("phrase_reader")
            encoder = PhraseReadingEncoder(encoder, verify_file(manifest, manifest.encoder["reader"]), words)
    return PromptBank.load(verify_file(manifest, manifest.bank), encoder)


def load(pack_dir: str | os.PathLike[str], backend: str = "auto", precision: str = "int8", threads: int = 0,
         warm_up: bool = True) -> Pipeline:
    """Load a pack (a folder with manifest.json) into a Pipeline, checking every file's sha256.

    `backend`: auto | tensorrt | onnxruntime-cuda | onnxruntime (see `select_backend`);
    `precision`: int8 | fp16 | fp32; `threads`: CPU threads for ONNX Runtime (0: all cores);
    `warm_up`: run batch 1 once so the first frame is not the slow one.
    Raises: PackError (not a pack, malformed or newer manifest, altered files), BackendError,
    MissingExtraError (e.g. TensorRT asked for but not installed)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 256:
        raise InputError(f"threads must be an integer in 0..256 (0: all cores), got {threads!r}")
    manifest = read_manifest(pack_dir)
    be, choice = select_backend(manifest, backend, precision, threads)
    log.debug("%s %s (%s)", choice.backend, choice.precision, choice.reason)
    gen = Pipeline(manifest, be, choice, load_bank(manifest))
    if warm_up:
        gen.warm_up()
    return gen


def render(backend: backends.Backend, embeddings: np.ndarray | None, seeds: Sequence[int], nz: int,
           batch: int = 64, noise_kind: str = PORTABLE) -> np.ndarray:
    """uint8 [N, H, W, 3] images from a bare backend (no pack): row i from embeddings[i] (None: an
    unconditional generator, z alone) and seeds[i], in batches of `batch`. What the quality gate, `sample`
    and `quality` use to render many images.

    Raises: InputError (bad seeds), BackendError (inference failed)."""
    if embeddings is not None and len(embeddings) != len(seeds):
        raise InputError(f"{len(embeddings)} embeddings but {len(seeds)} seeds")
    z = noise(seeds, nz, noise_kind)
    emb = None if embeddings is None else np.ascontiguousarray(embeddings, dtype=np.float32)
    chunks = [backend.infer({"z": z[i:i + batch]} if emb is None else
                            {"z": z[i:i + batch], "embedding": emb[i:i + batch]})["image"]
              for i in range(0, len(z), batch)]
    return to_uint8(np.concatenate(chunks))
