"""`edge-t2i bench`: frames per second, frame-time percentiles and utilization, every backend
side by side in one process, interleaved (A B C A B C ...) so machine drift hits all alike.

JSON contract (other tools read these keys):
    {"machine": {...}, "peak_gmacs": float, "macs_per_image": int,
     "rows": [{"backend": "torch"|"torch-compile"|"onnxruntime"|"tensorrt", "precision": "fp32"|"fp16"|"int8",
               "config": str, "batch": int, "images_per_s": float, "p50_ms": float, "p90_ms": float,
               "p99_ms": float, "max_ms": float, "infer_images_per_s": float, "infer_p50_ms": float,
               "vs_torch": float|null, "model_bytes": int, "rss_delta_mb": float, "gmacs": float,
               "utilization": float}, ...],
     "skipped": [{"config": str, "reason": str}], "sustained": {...}|null}
Frame time = one end-to-end `Pipeline.generate` call (bank lookup, z, inference, uint8) for a batch.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_t2i.bench.macs import onnx_macs_per_image
from edge_t2i.bench.peaks import gemm_peak_gmacs
from edge_t2i.bench.report import machine_info
from edge_t2i.bench.stats import percentiles_ms
from edge_t2i.errors import BackendError, EdgeT2IError, InputError, MissingExtraError, did_you_mean
from edge_t2i.runtime import backends
from edge_t2i.runtime.manifest import Manifest, read_manifest, verify_file
from edge_t2i.runtime.pipeline import Choice, Pipeline, load_bank, select_backend

log = logging.getLogger(__name__)

CONFIGS = ("torch", "torch-compile", "ort-fp32", "ort-int8", "trt-fp16", "trt-int8")
SLICE_S = 0.25  # one interleaving turn per configuration


@dataclass
class Config:
    name: str
    backend: str      # the JSON "backend" value
    precision: str
    make: Callable[[], Pipeline]
    model_file: Path | None
    gen: Pipeline | None = None
    e2e: dict[int, list[float]] = field(default_factory=dict)
    infer: dict[int, list[float]] = field(default_factory=dict)
    rss_delta_mb: float = 0.0
    batches: list[int] = field(default_factory=list)  # the requested batch sizes this backend can run


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _checkpoint_for(manifest: Manifest, checkpoint: str | None) -> tuple[Path | None, dict, str]:
    """(checkpoint, extra torch-backend arguments, why there is none) for the torch peers: this project's
    checkpoint folder, or the DF-GAN checkpoint file a `--arch dfgan` pack came from; none for a pack
    converted from an ONNX model."""
    model = manifest.raw.get("model") or {}
    arch = model.get("architecture")
    if arch == "onnx":
        return None, {}, "the pack was converted from an ONNX model: there is no torch network to run"
    for cand in (checkpoint, manifest.raw.get("source_checkpoint")):
        if arch == "dfgan" and cand and Path(cand).is_file():
            return Path(cand), {"dfgan": {k: model[k] for k in ("resolution", "ngf", "nz", "cond_dim")}}, ""
        if arch != "dfgan" and cand and (Path(cand) / "config.json").is_file():
            return Path(cand), {}, ""
    return None, {}, "no checkpoint (pass --checkpoint) for the torch reference"


def build_configs(manifest: Manifest, names: list[str], threads: int,
                  checkpoint: str | None) -> tuple[list[Config], list[dict]]:
    configs, skipped = [], []
    ckpt, torch_args, no_ckpt = _checkpoint_for(manifest, checkpoint)
    for name in names:
        if name in ("torch", "torch-compile"):
            if ckpt is None:
                skipped.append({"config": name, "reason": no_ckpt})
                continue
            try:
                import torch  # noqa: F401
            except ImportError:
                skipped.append({"config": name, "reason": "torch is not installed (pip install 'edge-t2i[train]')"})
                continue

            def make(c: str = name, p: Path = ckpt) -> Pipeline:
                b = backends.create("torch", checkpoint_dir=p, compile=(c == "torch-compile"), threads=threads,
                                    **torch_args)
                return Pipeline(manifest, b, Choice(c, "fp32", "reference"), load_bank(manifest))

            configs.append(Config(name, name, "fp32", make, ckpt if ckpt.is_file() else ckpt / "generator.safetensors"))
        elif name == "ort-fp32":  # the peer: ONNX Runtime with default session options
            def make_peer() -> Pipeline:
                b = backends.create("onnxruntime", model_path=verify_file(manifest, manifest.models["fp32"]),
                                    default_options=True)
                return Pipeline(manifest, b, Choice("onnxruntime", "fp32", "default options"), load_bank(manifest))

            configs.append(Config(name, "onnxruntime", "fp32", make_peer, manifest.path(manifest.models["fp32"])))
        elif name == "ort-int8":
            if "int8" not in manifest.models:
                skipped.append({"config": name, "reason": "the pack has no int8 model"})
                continue

            def make_ours() -> Pipeline:
                b, choice = select_backend(manifest, "onnxruntime", "int8", threads)
                return Pipeline(manifest, b, choice, load_bank(manifest))

            configs.append(Config(name, "onnxruntime", "int8", make_ours, manifest.path(manifest.models["int8"])))
        else:  # trt-fp16 / trt-int8
            precision = name.split("-")[1]
            try:
                b, choice = select_backend(manifest, "tensorrt", precision, threads)
                b.close()
            except EdgeT2IError as exc:
                skipped.append({"config": name, "reason": str(exc)})
                continue
            engine = next(e for e in manifest.engines if e.precision == precision)

            def make_trt(p: str = precision) -> Pipeline:
                b, choice = select_backend(manifest, "tensorrt", p, threads)
                return Pipeline(manifest, b, choice, load_bank(manifest))

            configs.append(Config(name, "tensorrt", precision, make_trt, manifest.path(engine.file)))
    return configs, skipped


def _run_for(fn: Callable[[], object], seconds: float, out: list[float]) -> None:
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out.append(t1 - t0)
        if t1 >= end:
            return


def measure(configs: list[Config], batches: list[int], seconds: float, warmup: int,
            show: Callable[[str], None] = log.info) -> list[dict]:
    """Load, warm up, then interleave every (config, batch) in SLICE_S turns for `seconds` each.

    Returns: the (config, batch) pairs skipped because the batch is over the backend's limit."""
    skipped = []
    for c in configs:
        before = _rss_mb()
        t0 = time.perf_counter()
        c.gen = c.make()
        c.batches = [b for b in batches if b <= c.gen.max_batch]
        skipped += [{"config": c.name, "reason": f"batch {b} is over {c.gen.backend.describe()}'s limit of "
                     f"{c.gen.max_batch}"} for b in batches if b not in c.batches]
        for b in c.batches:  # warm-up (torch.compile compiles here, not in the timed turns)
            prompts, feeds = _inputs(c.gen, b)
            for _ in range(warmup):
                c.gen.generate(prompts, seeds=list(range(b)))
        c.rss_delta_mb = _rss_mb() - before
        show(f"  loaded {c.name:<14} in {time.perf_counter() - t0:5.1f}s ({c.gen.choice.reason})")
    turns = max(1, int(round(seconds / SLICE_S)))
    for turn in range(turns):
        for c in configs:
            for b in c.batches:
                prompts, feeds = _inputs(c.gen, b)  # type: ignore[arg-type]
                seeds = list(range(turn * b, turn * b + b))
                gen = c.gen
                assert gen is not None
                _run_for(lambda g=gen, p=prompts, s=seeds: g.generate(p, seeds=s), SLICE_S * 0.7, c.e2e.setdefault(b, []))
                _run_for(lambda g=gen, f=feeds: g.backend.infer(f), SLICE_S * 0.3, c.infer.setdefault(b, []))
        gc.collect()
    return skipped


def _inputs(gen: Pipeline, batch: int) -> tuple[list[str], dict[str, np.ndarray]]:
    assert gen.bank is not None
    prompts = [gen.bank.texts[i % len(gen.bank)] for i in range(batch)]
    feeds = {"z": np.random.default_rng(batch).standard_normal((batch, gen.nz), dtype=np.float32),
             "embedding": gen.embeddings_for(prompts)}
    return prompts, feeds


def rows_from(configs: list[Config], macs: int | None, peak: float) -> list[dict]:
    """One row per measured (config, batch); `macs` None (no `onnx` to count them): no GMAC/s, utilization."""
    rows = []
    for c in configs:
        for b in c.batches:
            lat, inf = c.e2e[b], c.infer[b]
            ips = b * len(lat) / sum(lat)
            row = {"config": c.name, "backend": c.backend, "precision": c.precision, "batch": b,
                   "images_per_s": round(ips, 2), **{k: round(v, 3) for k, v in percentiles_ms(lat).items()},
                   "infer_images_per_s": round(b * len(inf) / sum(inf), 2),
                   "infer_p50_ms": round(percentiles_ms(inf)["p50_ms"], 3), "calls": len(lat),
                   "model_bytes": c.model_file.stat().st_size if c.model_file and c.model_file.exists() else None,
                   "rss_delta_mb": round(c.rss_delta_mb, 1),
                   "gmacs": round(macs * ips / 1e9, 2) if macs else None,
                   "utilization": round(macs * ips / 1e9 / peak, 4) if macs and peak else None}
            rows.append(row)
    for row in rows:
        ref = next((r for r in rows if r["config"] == "torch" and r["batch"] == row["batch"]), None)
        row["vs_torch"] = round(row["images_per_s"] / ref["images_per_s"], 2) if ref else None
    return rows


def sustained(gen: Pipeline, seconds: float) -> dict:
    """Frame time over a long run at batch 1: stalls, GC spikes, throttling."""
    prompts, _ = _inputs(gen, 1)
    t_start = time.perf_counter()
    stamps, lat = [], []
    i = 0
    while time.perf_counter() - t_start < seconds:
        t0 = time.perf_counter()
        gen.generate(prompts, seeds=[i])
        t1 = time.perf_counter()
        stamps.append(t0 - t_start)
        lat.append(t1 - t0)
        i += 1
    return {"config": gen.choice.backend + "-" + gen.choice.precision, "seconds": seconds, "frames": len(lat),
            "t_s": [round(t, 4) for t in stamps], "frame_ms": [round(x * 1e3, 3) for x in lat],
            **{k: round(v, 3) for k, v in percentiles_ms(lat).items()}}


def run_bench(pack: str | os.PathLike[str], names: list[str], batches: list[int], seconds: float = 2.0,
              warmup: int = 3, threads: int = 0, checkpoint: str | None = None, sustained_s: float = 0.0,
              show: Callable[[str], None] = log.info) -> dict:
    for n in names:
        if n not in CONFIGS:
            raise InputError(did_you_mean(n, CONFIGS, "benchmark backend"))
    if not batches or min(batches) < 1 or max(batches) > 256:
        raise InputError("--batch takes sizes between 1 and 256, e.g. 1,4,16")
    manifest = read_manifest(pack)
    show("measuring the machine's FP32 GEMM peak ...")
    peak = gemm_peak_gmacs()
    try:
        macs: int | None = onnx_macs_per_image(verify_file(manifest, manifest.models["fp32"]))
    except MissingExtraError as exc:
        show(f"  no MAC count, so no GMAC/s or utilization: {exc}")
        macs = None
    configs, skipped = build_configs(manifest, names, threads, checkpoint)
    for s in skipped:
        show(f"  skip {s['config']:<14} {s['reason']}")
    if not configs:
        raise BackendError("no requested configuration can run here")
    skipped += measure(configs, batches, seconds, warmup, show)
    result = {"machine": machine_info(), "pack": str(pack), "peak_gmacs": round(peak, 2), "macs_per_image": macs,
              "seconds_per_config": seconds, "threads": threads or os.cpu_count(),
              "rows": rows_from(configs, macs, peak), "skipped": skipped, "sustained": None}
    if sustained_s > 0:
        ours = next((c for c in configs if c.name == "ort-int8"), configs[0])
        result["sustained"] = sustained(ours.gen, sustained_s)  # type: ignore[arg-type]
    for c in configs:
        c.gen.close()  # type: ignore[union-attr]
    return result
