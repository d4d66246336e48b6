"""`load(pack)` -> Pipeline: prompts (or embeddings) + seeds -> uint8 images, torch-free.

The runtime's Pipeline: bank lookup -> noise from seeds -> backend inference ->
uint8 pixels. z comes from `noise`, so the same seed gives the same image on
every backend and a game can re-create an asset from its seed.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from edge_t2i.errors import BackendError, InputError, PackError
from edge_t2i.imaging import to_uint8
from edge_t2i.runtime import backends
from edge_t2i.runtime.bank import PromptBank, TextEncoder, UnknownPolicy, check_policy
from edge_t2i.runtime.manifest import Manifest, read_manifest
from edge_t2i.runtime.noise import PORTABLE, check_seeds, noise
from edge_t2i.runtime.select import BACKEND_CHOICES, Candidate, Route, Trial, check_names, choose, input_dims, io_spec

_T = TypeVar("_T")

log = logging.getLogger(__name__)
MAX_BATCH = 256
MAX_PROMPTS = 4096  # prompts one embeddings_for call looks up (a prompt file's worth: the CLI's seed limit)
__all__ = ["BACKEND_CHOICES", "Choice", "Pipeline", "input_dims", "load", "load_bank", "render"]


@dataclass(frozen=True)
class Choice:
    """Which engine runs a range of batch sizes, and why (its reason, device check and measured speed)."""

    backend: str
    precision: str
    reason: str

    @classmethod
    def of(cls, trial: Trial) -> Choice:
        c = trial.candidate
        parts = [c.reason]
        if trial.verdict is not None:
            parts.append(f"device check: PSNR {trial.verdict.psnr_db:.1f} dB, SSIM {trial.verdict.ssim:.4f}")
        if trial.rates:
            parts.append("measured " + ", ".join(f"{r:.0f} img/s at batch {b}" for b, r in sorted(trial.rates.items())))
        return cls(c.engine, c.precision, "; ".join(parts))


class Pipeline:
    """A loaded pack: prompt bank + backend behind one thread-safe `generate`.

    Build it with `load(pack)`. Attributes: `manifest`, `backend`, `choice` (which backend
    and why), `bank` (None if the pack has none), `resolution` (pixels), `nz`."""

    def __init__(self, manifest: Manifest, routes: list[Route], bank: PromptBank | None,
                 trials: list[Trial] | None = None):
        if not routes:
            raise BackendError("a Pipeline needs at least one backend")
        self.manifest = manifest
        self.routes = sorted(routes, key=lambda r: r.max_batch)
        self.routes[-1].max_batch = 2**31
        self.trials = trials or [r.trial for r in self.routes]
        self.bank = bank
        self._locks = {id(r.backend): (None if r.backend.thread_safe else threading.Lock()) for r in self.routes}
        self._noise_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._noise_lock = threading.Lock()
        self._last_call = time.monotonic()
        self._warm: tuple[threading.Thread, threading.Event] | None = None
        self._closed = False

    @classmethod
    def single(cls, manifest: Manifest, backend: backends.Backend, reason: str, bank: PromptBank | None) -> Pipeline:
        """A Pipeline on one given backend (bench's peers): no choice, no device check."""
        if backend.io is None:
            backend.io = io_spec(manifest)
        cand = Candidate(backend.name, backend.precision, None, True, reason)
        return cls(manifest, [Route(2**31, backend, Trial(cand))], bank)

    @property
    def backend(self) -> backends.Backend:
        """The backend of batch 1 (the game's frame)."""
        return self.routes[0].backend

    @property
    def choice(self) -> Choice:
        """Which engine runs batch 1 and why."""
        return Choice.of(self.routes[0].trial)

    @property
    def choices(self) -> list[tuple[int, Choice]]:
        """(largest batch size, Choice) per route: batch-size ranges may run on different engines."""
        return [(min(r.max_batch, self.max_batch), Choice.of(r.trial)) for r in self.routes]

    def _route(self, batch: int) -> Route:
        if self._closed:
            raise BackendError("this Pipeline is closed: load the pack again")
        return next(r for r in self.routes if batch <= r.max_batch)

    @property
    def resolution(self) -> int:
        return self.manifest.resolution

    @property
    def nz(self) -> int:
        return self.manifest.nz

    @property
    def max_batch(self) -> int:
        """The largest batch one `generate` call takes here (a TensorRT profile may end below MAX_BATCH)."""
        return min(MAX_BATCH, self.routes[-1].backend.max_batch or MAX_BATCH)  # earlier routes end below theirs

    def embeddings_for(self, prompts: Sequence[str], unknown: UnknownPolicy | None = None) -> np.ndarray:
        """float32 [len(prompts), dim] bank embeddings; prompts not in the bank follow `unknown`
        (default: "encode" if the pack has a text encoder, else "error"; see `PromptBank.lookup`).

        Raises: PackError (no bank), InputError (unknown prompt under "error", bad policy)."""
        if not self.conditional:
            raise InputError("this pack's generator is unconditional: it takes no prompts, only seeds")
        if self.bank is None:
            raise PackError("this pack has no prompt bank: pass embeddings instead of prompts")
        if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts \
                or not all(isinstance(p, str) for p in prompts):
            raise InputError("embeddings_for takes a non-empty list of prompts (strings)")
        if len(prompts) > MAX_PROMPTS:
            raise InputError(f"{len(prompts)} prompts: embeddings_for takes at most {MAX_PROMPTS} a call")
        policy = check_policy(("encode" if self.bank.encoder is not None else "error") if unknown is None else unknown)
        return np.stack([self.bank.lookup(p, policy) for p in prompts])

    def explain(self, prompt: str) -> dict:
        """What this pack makes of `prompt` (runtime/bank.py `PromptBank.explain`): whether it is in the bank, the
        text the encoder gets (one-letter typos of the bank's words corrected), the words no bank prompt uses, and
        the bank prompt nearest to what was read. Raises: InputError (not a prompt; an unconditional pack),
        PackError (no bank), what the encoder raises."""
        if not self.conditional:
            raise InputError("this pack's generator is unconditional: it reads no prompts")
        if self.bank is None:
            raise PackError("this pack has no prompt bank: it reads embeddings, not prompts")
        return self.bank.explain(prompt)

    def generate(self, prompts_or_embeddings: str | Sequence[str] | np.ndarray | None = None,
                 seeds: Sequence[int] | int | None = None, z: np.ndarray | None = None, bgr: bool = False,
                 unknown: UnknownPolicy | None = None, raw: bool = False) -> np.ndarray:
        """Images for prompts or embeddings: uint8 [B, H, W, 3] RGB (BGR with `bgr=True`), or with
        `raw=True` the generator's float32 [B, 3, H, W] in [-1, 1]. A sprite pack (`channels` 4) returns
        premultiplied RGBA [B, H, W, 4] (BGRA with `bgr=True`): draw it with "over" blending,
        out = rgb + (1 - alpha) * background (`edge_t2i.imaging.composite`), e.g. OpenGL's
        glBlendFunc(GL_ONE, GL_ONE_MINUS_SRC_ALPHA).

        `prompts_or_embeddings`: a prompt, a list of B prompts (looked up in the bank, see
        `embeddings_for`), or float embeddings [B, dim] (L2-normalised sentence vectors); None for an
        unconditional pack (`conditional` False), which draws from the seeds alone.
        `seeds`: one seed, or one per row (default 0..B-1); with one prompt and several seeds,
        B = len(seeds). They become z through `noise`; pass `z` float32 [B, nz] to skip that.
        Raises: InputError (empty batch, wrong shapes, NaN/inf, batch over the backend's limit,
        bad seeds, unknown prompt, a prompt for an unconditional pack or none for a conditional one),
        PackError (no bank), BackendError (inference failed).
        """
        if not isinstance(bgr, bool) or not isinstance(raw, bool):
            raise InputError(f"bgr and raw are True or False, got {type(bgr).__name__} and {type(raw).__name__}")
        if not self.conditional:
            return self._generate_unconditional(prompts_or_embeddings, seeds, z, bgr, raw)
        if prompts_or_embeddings is None:
            raise InputError("this pack draws what a prompt says: pass a prompt, prompts or embeddings")
        emb = self._embeddings(prompts_or_embeddings, unknown)
        batch = emb.shape[0]
        trusted = z is None
        if z is None:
            seed_list = self._seed_list(seeds, batch)
            if batch == 1 and len(seed_list) > 1:  # one prompt, many seeds
                emb = np.repeat(emb, len(seed_list), axis=0)
                batch = len(seed_list)
            z = self._noise(seed_list)
        z = self._check(np.asarray(z), "z", (batch, self.nz), trusted)
        return self._images({"z": z, "embedding": emb}, bgr, raw)

    @property
    def conditional(self) -> bool:
        """False for an unconditional generator (noise alone -> image): `generate` takes seeds, no prompts."""
        return self.manifest.conditional

    @property
    def channels(self) -> int:
        """3: `generate` returns RGB; 4: premultiplied RGBA (a sprite pack: composite it over your frame)."""
        return self.manifest.channels

    def _generate_unconditional(self, prompts: object, seeds: Sequence[int] | int | None, z: np.ndarray | None,
                                bgr: bool, raw: bool) -> np.ndarray:
        if prompts is not None:
            raise InputError("this pack's generator is unconditional (noise alone -> image): it takes no prompt; "
                             "pass seeds only, e.g. generate(seeds=range(16))")
        trusted = z is None
        if z is None:
            seed_list = self._seed_list(0 if seeds is None else seeds, 1)  # batch 1 takes any number of seeds
            if not seed_list:
                raise InputError("nothing to generate: no seeds")
            z = self._noise(seed_list)
        z = np.asarray(z)
        z = self._check(z, "z", (len(z) if z.ndim == 2 else 1, self.nz), trusted)
        return self._images({"z": z}, bgr, raw)

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
        if hasattr(seeds, "__len__") and len(seeds) > MAX_BATCH:  # type: ignore[arg-type]  # before listing them
            raise InputError(f"{len(seeds)} seeds: at most {MAX_BATCH} a call")  # type: ignore[arg-type]
        seed_list = list(itertools.islice(seeds, MAX_BATCH + 1))  # type: ignore[arg-type,call-overload]  # bools: noise()
        if len(seed_list) > MAX_BATCH:
            raise InputError(f"more than {MAX_BATCH} seeds: at most {MAX_BATCH} a call")
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
        self._check_batch(len(items))  # before any prompt is looked up or encoded
        return self.embeddings_for(items, unknown)

    def _check_batch(self, batch: int) -> None:
        """InputError for a batch over what one call takes here (MAX_BATCH, or a TensorRT profile's end)."""
        if batch > self.max_batch:
            raise InputError(f"batch {batch} exceeds the limit of {self.max_batch} for {self.backend.describe()}")

    def _check(self, arr: np.ndarray, name: str, shape: tuple[int, int], trusted: bool = False) -> np.ndarray:
        """`arr` as contiguous float32 of `shape` within the batch limit; `trusted` (z made here from seeds, bank
        rows checked at load) skips the NaN/inf scan. Raises InputError."""
        if arr.ndim != 2 or arr.shape[1] != shape[1] or arr.shape[0] != shape[0]:
            raise InputError(f"{name} must have shape [{shape[0]}, {shape[1]}], got {list(arr.shape)}")
        if arr.shape[0] == 0:
            raise InputError("nothing to generate: batch size 0")
        self._check_batch(arr.shape[0])
        try:
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        except (TypeError, ValueError) as exc:  # strings, objects, complex numbers
            raise InputError(f"{name} must be float numbers, got {arr.dtype}") from exc
        if not trusted and not np.isfinite(arr).all():
            raise InputError(f"{name} contains NaN or inf")
        return arr

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The generator's float32 [B, 3, R, R] for raw inputs {"z": [B, nz](, "embedding": [B, dim])}, on the
        engine that runs batch B here, checked against the manifest (runtime/backends/base.py IOSpec).
        Raises: InputError, PackError (output differs from the manifest), BackendError."""
        if not isinstance(feeds, dict) or not all(isinstance(v, np.ndarray) for v in feeds.values()):
            raise InputError(f"infer takes a dict of float32 arrays {{'z': [B, {self.nz}], ...}}, got "
                             f"{type(feeds).__name__}")
        self._check_batch(max((len(v) if v.ndim else 0 for v in feeds.values()), default=0))
        return self._call(feeds, checked=True)[0]["image"]

    def _call(self, feeds: dict[str, np.ndarray], checked: bool) -> tuple[dict[str, np.ndarray], backends.Backend]:
        """The outputs of the engine that runs this batch size: `checked`, its `infer` (feeds and outputs checked);
        else its bare `run`, for feeds `generate` checked."""
        backend = self._route(len(feeds.get("z", ()))).backend
        return self._locked(backend, backend.infer if checked else backend.run, feeds), backend

    def _locked(self, backend: backends.Backend, call: Callable[..., _T], *args: object) -> _T:
        """`call(*args)` under `backend`'s lock where it is not thread-safe."""
        self._last_call = time.monotonic()
        lock = self._locks[id(backend)]
        if lock is None:
            return call(*args)
        with lock:
            return call(*args)

    def _images(self, feeds: dict[str, np.ndarray], bgr: bool, raw: bool) -> np.ndarray:
        """`generate`'s last step, on feeds it checked itself: the engine's uint8 pixels (Backend.pixels: its output
        checked against the manifest (backends.base.IOSpec) and converted)."""
        if raw:
            return self.infer(feeds)
        backend = self._route(len(feeds["z"])).backend
        if backend.io is None:
            backend.io = io_spec(self.manifest)
        return self._locked(backend, backend.pixels, feeds, bgr)

    def _noise(self, seeds: list[int]) -> np.ndarray:
        """z of `seeds`; the last few seed lists are kept (a game re-creating an asset asks for the same)."""
        check_seeds(seeds)  # before the key: int(True) is 1
        key = tuple(int(s) for s in seeds) if len(seeds) <= 64 else None
        hit = self._noise_cache.get(key) if key is not None else None  # type: ignore[arg-type]
        if hit is not None:
            return hit
        z = noise(seeds, self.nz, self.manifest.noise)
        if key is not None:
            z.setflags(write=False)
            with self._noise_lock:
                if len(self._noise_cache) >= 32:
                    self._noise_cache.pop(next(iter(self._noise_cache)))
                self._noise_cache[key] = z
        return z

    def warm_up(self, batches: Sequence[int] = (1,)) -> float:
        """Run each batch size once so the first frame is not the slow one; returns seconds."""
        if isinstance(batches, (str, bytes)) or not isinstance(batches, (list, tuple, range)) or len(batches) > 16 \
                or not all(not isinstance(b, bool) and isinstance(b, (int, np.integer)) and 1 <= b <= self.max_batch
                           for b in batches):
            raise InputError(f"warm_up takes up to 16 batch sizes in 1..{self.max_batch}, got {str(batches)[:60]}")
        t0 = time.perf_counter()
        for b in batches:
            self.infer({name: np.zeros((b, size), np.float32) for name, size in input_dims(self.manifest).items()})
        return time.perf_counter() - t0

    def keep_warm(self, interval_s: float | None = 1.0) -> None:
        """For programs that render rarely (a kiosk, a level load): a background thread runs one batch-1 frame
        whenever no call came for `interval_s` seconds, so the engine's threads, caches and the CPU's clocks do
        not go cold and the next real frame costs what a frame costs. None stops it (so does `close`).
        Raises: InputError (interval not a number in [0.01, 3600])."""
        if interval_s is not None and (isinstance(interval_s, bool) or not isinstance(interval_s, (int, float))
                                       or not 0.01 <= interval_s <= 3600):
            raise InputError(f"keep_warm interval must be seconds in [0.01, 3600] or None, got {interval_s!r}")
        if interval_s is not None and self._closed:
            raise BackendError("this Pipeline is closed: load the pack again")
        if self._warm is not None:
            thread, stop = self._warm
            stop.set()
            if thread is not threading.current_thread():
                thread.join()
            self._warm = None
        if interval_s is None:
            return
        stop = threading.Event()
        feeds = {name: np.zeros((1, size), np.float32) for name, size in input_dims(self.manifest).items()}
        ref = weakref.ref(self)  # the thread does not keep a dropped Pipeline alive

        def run() -> None:
            while not stop.wait(interval_s):
                gen = ref()
                if gen is None:
                    return
                if time.monotonic() - gen._last_call >= interval_s:
                    try:
                        gen.infer(feeds)
                    except Exception:  # noqa: BLE001 - a closed or failing engine: the next real call says why
                        return
                del gen

        thread = threading.Thread(target=run, name="edge-t2i-keep-warm", daemon=True)
        self._warm = (thread, stop)
        thread.start()

    def close(self) -> None:
        self.keep_warm(None)
        self._closed = True
        for r in self.routes:
            r.backend.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Pipeline({self.manifest.root}, {self.choice.backend} {self.choice.precision}, "
                f"{self.resolution}px, bank={len(self.bank) if self.bank else 0})")


def load_bank(manifest: Manifest) -> PromptBank | None:
    """The pack's prompt bank (with its ONNX text encoder if the pack has one, loaded when a prompt
    first needs it, so prompts in the bank work without the `encoder` extra), or None. Every file is read
    and verified as runtime/packfile.py reads pack files, the encoder's when it is first used.

    Raises: PackError (missing, altered or malformed file)."""
    if manifest.bank is None:
        return None
    encoder: TextEncoder | None = None
    if manifest.encoder is not None:
        from edge_t2i.runtime.encoder import LazyTextEncoder
        from edge_t2i.runtime.packfile import read_model

        files = manifest.encoder
        encoder = LazyTextEncoder(manifest, files["model"], files["tokenizer"])
        if "reader" in files:
            from edge_t2i.runtime.reader import PhraseReadingEncoder

            words = manifest.model.get("phrase_reader")
            encoder = PhraseReadingEncoder(encoder, lambda: read_model(manifest, files["reader"]), words,
                                           label=f"pack file {files['reader']}")
    return PromptBank.from_pack(manifest, encoder)


def load(pack_dir: str | os.PathLike[str], backend: str = "auto", precision: str = "auto", threads: int = 0,
         warm_up: bool = True, tune: bool | None = None) -> Pipeline:
    """Load a pack (a folder with manifest.json) into a Pipeline, checking every file's sha256, on the fastest
    engine here that passes its device check (runtime/select.py, runtime/verify.py).

    `backend`: auto | tensorrt | onnxruntime-cuda | openvino-gpu | openvino-npu | onnxruntime | openvino;
    `precision`: auto | int8 | fp16 | bf16 | fp32 (auto: the fastest verified, never an INT8 slower than FP32;
    bf16: the FP32 model run in bf16 by OpenVINO on a CPU with native bf16);
    `threads`: CPU threads (0: all cores); `warm_up`: run batch 1 (and each route) once so the first frame
    is not the slow one; `tune`: measure the candidates (default: where `backend` or `precision` is "auto",
    once per pack and device, cached in the user's cache folder: runtime/cache.py; $EDGE_T2I_TUNE=0 turns it
    off and takes the first verified candidate in runtime/select.py's order).
    Raises: PackError (not a pack, malformed or newer manifest, altered files), BackendError (unknown
    names; no engine runs or passes its check here), MissingExtraError (e.g. TensorRT asked for but not
    installed), InputError (bad threads)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 256:
        raise InputError(f"threads must be an integer in 0..256 (0: all cores), got {threads!r}")
    manifest = read_manifest(pack_dir)
    backend, precision = (x.lower() if isinstance(x, str) else x for x in (backend, precision))
    check_names(backend, precision)
    bank = load_bank(manifest)
    routes, trials = choose(manifest, backend, precision, threads, tune,
                            bank_embeddings=None if bank is None else bank.embeddings)
    gen = Pipeline(manifest, routes, bank, trials)
    for batch, choice in gen.choices:
        log.debug("batches up to %s: %s %s (%s)", batch, choice.backend, choice.precision, choice.reason)
    if warm_up:
        gen.warm_up([1, min(16, gen.max_batch)] if len(gen.routes) > 1 else [1])
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
