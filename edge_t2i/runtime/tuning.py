"""What the runtime learns about an engine on this device, measured once and cached: whether it passed the
device check (runtime/verify.py) and how many images per second it runs at each batch size.

Keys, like a TensorRT timing cache's, name everything the answer depends on: the pack (the sha256 of its
manifest, which lists every file's sha256), the engine and precision, the batch size, the threads, the CPU
(model and INT8 extensions) and the engine library's version. The cache file (`tune-v1.json` in the user's
cache folder, runtime/cache.py) is rewritten atomically; a corrupt or foreign file, or an entry of the
wrong shape, is ignored and rebuilt, never trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_t2i.runtime import cache, cpu
from edge_t2i.runtime.manifest import Manifest

log = logging.getLogger("edge_t2i.runtime")
CACHE_FILE = "tune-v1.json"
CACHE_FORMAT = "edge-t2i tune v1"
MAX_ENTRIES = 4096
MEASURE_S = 0.3          # timed seconds per (engine, batch size); at least MIN_CALLS calls
MIN_CALLS = 3
# how the runtime runs and checks engines: a new revision makes every earlier check and timing stale (4: OpenVINO
# compiles each batch size for its static shape, and the device check renders the set at batch 1 and 3 as well)
REVISION = 4


def pack_digest(manifest: Manifest) -> str:
    """sha256 of the manifest's content: it lists every file's sha256, so it names the pack's bytes."""
    raw = manifest.raw or manifest.to_dict()
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@functools.cache
def library_version(engine: str) -> str:
    """The installed version of the library behind `engine` (a new version re-measures and re-checks)."""
    from importlib import metadata

    family = engine.split("-")[0]
    dists = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"), "openvino": ("openvino",),
             "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"), "torch": ("torch",)}.get(family, ())
    for dist in dists:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def accelerator(engine: str) -> str:
    """The GPU or NPU an engine runs on ("" for CPU engines): its name and, for TensorRT, the compute capability."""
    if engine == "tensorrt":
        try:
            from edge_t2i.runtime.backends.tensorrt import gpu_identity

            return "TensorRT {} sm{}".format(*gpu_identity())
        except Exception as exc:  # noqa: BLE001 - no GPU: the key says so
            return f"unknown ({type(exc).__name__})"
    return _other_accelerator(engine)


@functools.cache
def _other_accelerator(engine: str) -> str:
    try:
        if engine.startswith("openvino-"):
            import openvino as ov

            device = engine.split("-")[1].upper()
            return str(ov.Core().get_property(device, "FULL_DEVICE_NAME"))
        if engine == "onnxruntime-cuda":
            import shutil
            import subprocess

            if shutil.which("nvidia-smi"):
                out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=10)
                return out.stdout.strip()[:200]
            return "cuda"
    except Exception as exc:  # noqa: BLE001 - unknown: the key says so, and a later success differs from it
        return f"unknown ({type(exc).__name__})"
    return ""


def device_identity(engine: str, threads: int) -> dict:
    """What an engine's speed and numerics depend on here besides the pack."""
    return {"engine": engine, "threads": threads or os.cpu_count() or 1, "cpu": cpu.cpu_model(),
            "isa": cpu.int8_isa(), "library": library_version(engine), "accelerator": accelerator(engine)}


def key(pack: str, engine: str, precision: str, kind: str, threads: int, batch: int = 0, file: str = "",
        file_sha256: str = "") -> str:
    """The cache key of one fact (kind "check" or "pixels-rate") about one engine candidate on this device."""
    ident = {"pack": pack, "precision": precision, "kind": kind, "batch": batch, "file": file,
             "file_sha256": file_sha256, "revision": REVISION, **device_identity(engine, threads)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()


def _valid(entry: object) -> bool:
    if not isinstance(entry, dict) or entry.get("kind") not in ("check", "rate"):
        return False
    fields = ("psnr_db", "ssim", "min_psnr_db", "min_ssim") if entry["kind"] == "check" else ("images_per_s",)
    numbers = [entry.get(k) for k in (*fields, "time")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        return False
    return entry["kind"] == "rate" or (isinstance(entry.get("passed"), bool) and isinstance(entry.get("reason"), str))


class TuneCache:
    """The cache file as a dict of key -> entry; `save` writes it back atomically (best effort)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self.dirty = False
        if path is None or not path.is_file():
            return
        try:
            if path.stat().st_size > 16 << 20:
                raise ValueError("too large")
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            log.debug("ignoring the tuning cache %s (%s): it will be rebuilt", path, exc)
            return
        if isinstance(raw, dict) and raw.get("format") == CACHE_FORMAT and isinstance(raw.get("entries"), dict):
            self.entries = {k: v for k, v in raw["entries"].items() if isinstance(k, str) and _valid(v)}

    @classmethod
    def open(cls) -> TuneCache:
        folder = cache.cache_dir()
        return cls(None if folder is None else folder / CACHE_FILE)

    def get(self, k: str) -> dict | None:
        return self.entries.get(k)

    def put(self, k: str, entry: dict) -> None:
        self.entries[k] = {**entry, "time": round(time.time())}
        self.dirty = True

    def save(self) -> None:
        if not self.dirty or self.path is None or cache.ensure() is None:
            return
        entries = dict(sorted(self.entries.items(), key=lambda kv: kv[1].get("time", 0))[-MAX_ENTRIES:])
        from edge_t2i._io import write_json

        try:
            write_json(self.path, {"format": CACHE_FORMAT, "entries": entries})
            self.dirty = False
        except OSError as exc:  # a read-only home: measure again next time, say why once
            log.debug("cannot write the tuning cache %s (%s)", self.path, exc)


def measure_rate(infer: Callable[[dict[str, np.ndarray]], object], dims: dict[str, int], batch: int,
                 seconds: float = MEASURE_S) -> float:
    """Images per second of `infer` at `batch`: two warm-up calls, then calls for `seconds` (at least
    MIN_CALLS); the median call time, so one preempted call does not decide."""
    rng = np.random.default_rng(batch)
    feeds = {n: rng.standard_normal((batch, d), dtype=np.float32) for n, d in dims.items()}
    for _ in range(2):
        infer(feeds)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < MIN_CALLS or time.perf_counter() < end:
        t0 = time.perf_counter()
        infer(feeds)
        times.append(time.perf_counter() - t0)
    return batch / float(np.median(times))
