"""`edge-t2i bench`: frames per second, frame-time percentiles and utilization, every backend
side by side in one process, interleaved (A B C A B C ...) so machine drift hits all alike.

JSON contract (other tools read these keys):
    {"machine": {...}, "peak_gmacs": {"fp32": float, "int8": float, "raised_by"?: [str]}, "macs_per_image": int,
     "rows": [{"backend": "torch"|"torch-compile"|"onnxruntime"|"openvino"|"tensorrt", "precision": "fp32"|"fp16"|"int8",
               "config": str, "batch": int, "images_per_s": float, "p50_ms": float, "p90_ms": float,
               "p99_ms": float, "max_ms": float, "infer_images_per_s": float, "infer_p50_ms": float,
               "vs_torch": float|null, "model_bytes": int, "rss_delta_mb": float, "gmacs": float,
               "utilization": float}, ...],
     "ratios": [{"batch": int, "config": "ort-int8", "vs": {peer config: ours / peer images/s}}],
     "skipped": [{"config": str, "reason": str}], "sustained": {...}|null}
Utilization = achieved GMAC/s over the GEMM peak of the row's precision (bench/peaks.py), at most 1.
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

CONFIGS = ("torch", "torch-compile", "ort-fp32", "ort-int8", "openvino", "openvino-int8", "trt-fp16", "trt-int8")
RATIO_PEERS = ("ort-fp32", "torch-compile", "torch", "openvino", "openvino-int8")  # what ort-int8 is compared with
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
    """(checkpoint, extra torch-backend arguments, why there is none) for the torch peers: `checkpoint`, this
    project's checkpoint folder or the DF-GAN checkpoint file a `--arch dfgan` pack came from (a pack records no
    path of the machine that converted it); none for a pack converted from an ONNX model or a DCGAN."""
    model = manifest.model
    arch = model.get("architecture")
    if arch in ("onnx", "dcgan"):
        return None, {}, f"the pack was converted from {'an ONNX model' if arch == 'onnx' else 'a DCGAN'}: the torch " \
                         "peers run this project's and DF-GAN's networks only"
    if arch == "dfgan" and checkpoint and Path(checkpoint).is_file():
        return Path(checkpoint), {"dfgan": {k: model[k] for k in ("resolution", "ngf", "nz", "cond_dim")}}, ""
    if arch != "dfgan" and checkpoint and (Path(checkpoint) / "config.json").is_file():
        return Path(checkpoint), {}, ""
    return None, {}, "no checkpoint (pass --checkpoint) for the torch reference"


def _torch_config(manifest: Manifest, name: str, threads: int,
                  source: tuple[Path | None, dict, str]) -> Config | str:
    ckpt, torch_args, why_not = source
    if ckpt is None:
        return why_not
    try:
        import torch  # noqa: F401
    except ImportError:
        return "torch is not installed (pip install 'edge-t2i[train]')"

    def make() -> Pipeline:
        b = backends.create("torch", checkpoint_dir=ckpt, compile=(name == "torch-compile"), threads=threads,
                            **torch_args)
        return Pipeline(manifest, b, Choice(name, "fp32", "reference"), load_bank(manifest))

    return Config(name, name, "fp32", make, ckpt if ckpt.is_file() else ckpt / "generator.safetensors")


def _ort_config(manifest: Manifest, name: str, threads: int) -> Config | str:
    precision = name.split("-")[1]  # ort-fp32: the FP32 model with the same session options and threads
    if precision not in manifest.models:
        return f"the pack has no {precision} model"

    def make() -> Pipeline:
        b, choice = select_backend(manifest, "onnxruntime", precision, threads)
        return Pipeline(manifest, b, choice, load_bank(manifest))

    from edge_t2i.runtime.pipeline import cpu_model_for

    return Config(name, "onnxruntime", precision, make, cpu_model_for(manifest, precision)[0])


def _openvino_config(manifest: Manifest, name: str, threads: int) -> Config | str:
    precision = "int8" if name.endswith("int8") else "fp32"
    if precision not in manifest.models:
        return f"the pack has no {precision} model"
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "OpenVINO is not installed (pip install 'edge-t2i[openvino]')"
    model = manifest.path(manifest.models[precision])

    def make() -> Pipeline:
        from edge_t2i.bench.peers import OpenVinoBackend

        b = OpenVinoBackend(verify_file(manifest, manifest.models[precision]), precision, threads)
        return Pipeline(manifest, b, Choice("openvino", precision, b.describe()), load_bank(manifest))

    return Config(name, "openvino", precision, make, model)


def _trt_config(manifest: Manifest, name: str, threads: int) -> Config | str:
    precision = name.split("-")[1]
    try:
        b, _ = select_backend(manifest, "tensorrt", precision, threads)
        b.close()
    except EdgeT2IError as exc:
        return str(exc)
    engine = next(e for e in manifest.engines if e.precision == precision)

    def make() -> Pipeline:
        b, choice = select_backend(manifest, "tensorrt", precision, threads)
        return Pipeline(manifest, b, choice, load_bank(manifest))

    return Config(name, "tensorrt", precision, make, manifest.path(engine.file))


def build_configs(manifest: Manifest, names: list[str], threads: int,
                  checkpoint: str | None) -> tuple[list[Config], list[dict]]:
    """The requested configurations that can run here, and {"config", "reason"} for those that cannot."""
    configs, skipped = [], []
    ckpt = _checkpoint_for(manifest, checkpoint)
    for name in names:
        if name.startswith("torch"):
            made = _torch_config(manifest, name, threads, ckpt)
        elif name.startswith("ort-"):
            made = _ort_config(manifest, name, threads)
        elif name.startswith("openvino"):
            made = _openvino_config(manifest, name, threads)
        else:
            made = _trt_config(manifest, name, threads)
        if isinstance(made, str):
            skipped.append({"config": name, "reason": made})
        else:
            configs.append(made)
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


def _inputs(gen: Pipeline, batch: int) -> tuple[list[str] | None, dict[str, np.ndarray]]:
    """(the prompts `generate` takes, None for an unconditional pack; the raw backend feeds)."""
    feeds = {"z": np.random.default_rng(batch).standard_normal((batch, gen.nz), dtype=np.float32)}
    if not gen.conditional:
        return None, feeds
    assert gen.bank is not None
    prompts = [gen.bank.texts[i % len(gen.bank)] for i in range(batch)]
    return prompts, {**feeds, "embedding": gen.embeddings_for(prompts)}


def rows_from(configs: list[Config], macs: int | None, peaks: dict[str, float]) -> list[dict]:
    """One row per measured (config, batch); `macs` None (no `onnx` to count them): no GMAC/s, utilization.
    `peaks`: {"fp32", "int8"} GEMM peaks in GMAC/s (raised in place where a row beats one: see utilization)."""
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
                   "gmacs": round(macs * ips / 1e9, 2) if macs else None}
            rows.append(row)
    utilization(rows, peaks)
    for row in rows:
        ref = next((r for r in rows if r["config"] == "torch" and r["batch"] == row["batch"]), None)
        row["vs_torch"] = round(row["images_per_s"] / ref["images_per_s"], 2) if ref else None
    return rows


def utilization(rows: list[dict], peaks: dict[str, float]) -> None:
    """Set each CPU row's "utilization": achieved GMAC/s over the GEMM peak of the precision it runs in
    (INT8 rows: the INT8 peak; others: FP32). A peak is a best case, so a row that beats it raises it
    (recorded in peaks["raised_by"]) and utilization never exceeds 100%. GPU rows: None (no GPU peak here)."""
    for row in rows:
        key = "int8" if row["precision"] == "int8" else "fp32"
        if row["backend"] != "tensorrt" and row["gmacs"] and row["gmacs"] > peaks.get(key, 0.0):
            peaks[key] = row["gmacs"]
            peaks.setdefault("raised_by", []).append(f"{row['config']} batch {row['batch']} ({key})")
    for row in rows:
        key = "int8" if row["precision"] == "int8" else "fp32"
        peak = peaks.get(key) if row["backend"] != "tensorrt" else None
        row["utilization"] = round(row["gmacs"] / peak, 4) if row["gmacs"] and peak else None


def ratios(rows: list[dict], ours: str = "ort-int8") -> list[dict]:
    """ours' images/s over each peer's, per batch size: [{"batch", "vs": {peer: ratio}}]."""
    out = []
    for row in (r for r in rows if r["config"] == ours):
        vs = {r["config"]: round(row["images_per_s"] / r["images_per_s"], 3) for r in rows
              if r["config"] in RATIO_PEERS and r["batch"] == row["batch"] and r["images_per_s"] > 0}
        out.append({"batch": row["batch"], "config": ours, "vs": vs})
    return out


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
    show("measuring the machine's FP32 and INT8 GEMM peaks ...")
    try:
        peaks = {p: round(gemm_peak_gmacs(p, threads), 2) for p in ("fp32", "int8")}
    except MissingExtraError as exc:
        show(f"  no GEMM peaks, so no utilization: {exc}")
        peaks = {}
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
    rows = rows_from(configs, macs, peaks)
    result = {"machine": machine_info(), "pack": str(pack), "peak_gmacs": peaks, "macs_per_image": macs,
              "seconds_per_config": seconds, "threads": threads or os.cpu_count(),
              "rows": rows, "ratios": ratios(rows), "skipped": skipped, "sustained": None}
    if sustained_s > 0:
        ours = next((c for c in configs if c.name == "ort-int8"), configs[0])
        result["sustained"] = sustained(ours.gen, sustained_s)  # type: ignore[arg-type]
    for c in configs:
        c.gen.close()  # type: ignore[union-attr]
    return result
