"""`edge-t2i bench`: frames per second, frame-time percentiles and efficiency, every backend
side by side in one process, interleaved (A B C A B C ...) so machine drift hits all alike.

JSON contract (other tools read these keys):
    {"machine": {...}, "peak_gmacs": float, "macs_per_image": int,
     "rows": [{"backend": "torch"|"torch-compile"|"onnxruntime"|"tensorrt", "precision": "fp32"|"fp16"|"int8",
               "config": str, "batch": int, "images_per_s": float, "p50_ms": float, "p90_ms": float,
               "p99_ms": float, "max_ms": float, "infer_images_per_s": float, "infer_p50_ms": float,
               "vs_torch": float|null, "model_bytes": int, "rss_delta_mb": float, "gmacs": float,
               "efficiency": float}, ...],
     "skipped": [{"config": str, "reason": str}], "sustained": {...}|null}
Frame time = one end-to-end `Generator.generate` call (bank lookup, z, inference, uint8) for a batch.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_t2i import atomic
from edge_t2i.bench_stats import gemm_peak_gmacs, onnx_macs_per_image, percentiles_ms
from edge_t2i.errors import BackendError, EdgeT2IError, InputError, did_you_mean
from edge_t2i.runtime import backends
from edge_t2i.runtime.generator import Choice, Generator, select_backend
from edge_t2i.runtime.pack import Manifest, read_manifest, verify_file

CONFIGS = ("torch", "torch-compile", "ort-fp32", "ort-int8", "trt-fp16", "trt-int8")
SLICE_S = 0.25  # one interleaving turn per configuration


@dataclass
class Config:
    name: str
    backend: str      # the JSON "backend" value
    precision: str
    make: Callable[[], Generator]
    model_file: Path | None
    gen: Generator | None = None
    e2e: dict[int, list[float]] = field(default_factory=dict)
    infer: dict[int, list[float]] = field(default_factory=dict)
    rss_delta_mb: float = 0.0


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_info() -> dict:
    info: dict = {"platform": platform.platform(), "machine": platform.machine(), "cores": os.cpu_count(),
                  "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    import importlib.metadata as md

    for dist in ("numpy", "onnxruntime", "torch", "tensorrt"):
        try:
            info[dist] = md.version(dist)
        except md.PackageNotFoundError:
            info[dist] = None
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True)
        info["gpu"] = out.stdout.strip() or None
    if shutil.which("nvpmodel"):  # a Jetson: the power mode and clocks change every figure
        info["nvpmodel"] = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True).stdout.strip()
        if shutil.which("jetson_clocks"):
            info["jetson_clocks"] = subprocess.run(["jetson_clocks", "--show"], capture_output=True,
                                                   text=True).stdout.strip()[:2000]
    return info


def _checkpoint_for(manifest: Manifest, checkpoint: str | None) -> Path | None:
    for cand in (checkpoint, manifest.raw.get("source_checkpoint")):
        if cand and (Path(cand) / "config.json").is_file():
            return Path(cand)
    return None


def build_configs(manifest: Manifest, names: list[str], threads: int,
                  checkpoint: str | None) -> tuple[list[Config], list[dict]]:
    configs, skipped = [], []
    ckpt = _checkpoint_for(manifest, checkpoint)
    for name in names:
        if name in ("torch", "torch-compile"):
            if ckpt is None:
                skipped.append({"config": name, "reason": "no checkpoint (pass --checkpoint) for the torch reference"})
                continue
            try:
                import torch  # noqa: F401
            except ImportError:
                skipped.append({"config": name, "reason": "torch is not installed (pip install 'edge-t2i[train]')"})
                continue

            def make(c: str = name, p: Path = ckpt) -> Generator:
                from edge_t2i.torch_backend import TorchBackend

                b = TorchBackend(p, compile=(c == "torch-compile"), threads=threads)
                return Generator(manifest, b, Choice(c, "fp32", "reference"), _bank(manifest))

            configs.append(Config(name, name, "fp32", make, ckpt / "generator.safetensors"))
        elif name == "ort-fp32":  # the peer: ONNX Runtime with default session options
            def make_peer() -> Generator:
                b = backends.create("onnxruntime", model_path=verify_file(manifest, manifest.models["fp32"]),
                                    default_options=True)
                return Generator(manifest, b, Choice("onnxruntime", "fp32", "default options"), _bank(manifest))

            configs.append(Config(name, "onnxruntime", "fp32", make_peer, manifest.path(manifest.models["fp32"])))
        elif name == "ort-int8":
            if "int8" not in manifest.models:
                skipped.append({"config": name, "reason": "the pack has no int8 model"})
                continue

            def make_ours() -> Generator:
                b, choice = select_backend(manifest, "onnxruntime", "int8", threads)
                return Generator(manifest, b, choice, _bank(manifest))

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

            def make_trt(p: str = precision) -> Generator:
                b, choice = select_backend(manifest, "tensorrt", p, threads)
                return Generator(manifest, b, choice, _bank(manifest))

            configs.append(Config(name, "tensorrt", precision, make_trt, manifest.path(engine.file)))
    return configs, skipped


def _bank(manifest: Manifest):  # noqa: ANN202
    from edge_t2i.runtime.generator import load_bank

    return load_bank(manifest)


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
            show: Callable[[str], None] = print) -> None:
    """Load, warm up, then interleave every (config, batch) in SLICE_S turns for `seconds` each."""
    for c in configs:
        before = _rss_mb()
        t0 = time.perf_counter()
        c.gen = c.make()
        for b in batches:  # warm-up (torch.compile compiles here, not in the timed turns)
            prompts, feeds = _inputs(c.gen, b)
            for _ in range(warmup):
                c.gen.generate(prompts, seeds=list(range(b)))
        c.rss_delta_mb = _rss_mb() - before
        show(f"  loaded {c.name:<14} in {time.perf_counter() - t0:5.1f}s ({c.gen.choice.reason})")
    turns = max(1, int(round(seconds / SLICE_S)))
    for turn in range(turns):
        for c in configs:
            for b in batches:
                prompts, feeds = _inputs(c.gen, b)  # type: ignore[arg-type]
                seeds = list(range(turn * b, turn * b + b))
                gen = c.gen
                assert gen is not None
                _run_for(lambda g=gen, p=prompts, s=seeds: g.generate(p, seeds=s), SLICE_S * 0.7, c.e2e.setdefault(b, []))
                _run_for(lambda g=gen, f=feeds: g.backend.infer(f), SLICE_S * 0.3, c.infer.setdefault(b, []))
        gc.collect()


def _inputs(gen: Generator, batch: int) -> tuple[list[str], dict[str, np.ndarray]]:
    assert gen.bank is not None
    prompts = [gen.bank.texts[i % len(gen.bank)] for i in range(batch)]
    feeds = {"z": np.random.default_rng(batch).standard_normal((batch, gen.nz), dtype=np.float32),
             "embedding": gen.embeddings_for(prompts)}
    return prompts, feeds


def rows_from(configs: list[Config], batches: list[int], macs: int, peak: float) -> list[dict]:
    rows = []
    for c in configs:
        for b in batches:
            lat, inf = c.e2e[b], c.infer[b]
            ips = b * len(lat) / sum(lat)
            row = {"config": c.name, "backend": c.backend, "precision": c.precision, "batch": b,
                   "images_per_s": round(ips, 2), **{k: round(v, 3) for k, v in percentiles_ms(lat).items()},
                   "infer_images_per_s": round(b * len(inf) / sum(inf), 2),
                   "infer_p50_ms": round(percentiles_ms(inf)["p50_ms"], 3), "calls": len(lat),
                   "model_bytes": c.model_file.stat().st_size if c.model_file and c.model_file.exists() else None,
                   "rss_delta_mb": round(c.rss_delta_mb, 1), "gmacs": round(macs * ips / 1e9, 2),
                   "efficiency": round(macs * ips / 1e9 / peak, 4) if peak else None}
            rows.append(row)
    for row in rows:
        ref = next((r for r in rows if r["config"] == "torch" and r["batch"] == row["batch"]), None)
        row["vs_torch"] = round(row["images_per_s"] / ref["images_per_s"], 2) if ref else None
    return rows


def sustained(gen: Generator, seconds: float) -> dict:
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
              show: Callable[[str], None] = print) -> dict:
    for n in names:
        if n not in CONFIGS:
            raise InputError(did_you_mean(n, CONFIGS, "benchmark backend"))
    if not batches or min(batches) < 1 or max(batches) > 256:
        raise InputError("--batch takes sizes between 1 and 256, e.g. 1,4,16")
    manifest = read_manifest(pack)
    show("measuring the machine's FP32 GEMM peak ...")
    peak = gemm_peak_gmacs()
    macs = onnx_macs_per_image(verify_file(manifest, manifest.models["fp32"]))
    configs, skipped = build_configs(manifest, names, threads, checkpoint)
    for s in skipped:
        show(f"  skip {s['config']:<14} {s['reason']}")
    if not configs:
        raise BackendError("no requested configuration can run here")
    measure(configs, batches, seconds, warmup, show)
    result = {"machine": machine_info(), "pack": str(pack), "peak_gmacs": round(peak, 2), "macs_per_image": macs,
              "seconds_per_config": seconds, "threads": threads or os.cpu_count(),
              "rows": rows_from(configs, batches, macs, peak), "skipped": skipped, "sustained": None}
    if sustained_s > 0:
        ours = next((c for c in configs if c.name == "ort-int8"), configs[0])
        result["sustained"] = sustained(ours.gen, sustained_s)  # type: ignore[arg-type]
    for c in configs:
        c.gen.close()  # type: ignore[union-attr]
    return result


def table(result: dict) -> str:
    head = (f"{'config':<14}{'batch':>6}{'img/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"{'vs torch':>9}{'infer/s':>9}{'MB':>7}{'GMAC/s':>8}{'eff':>7}")
    lines = [f"machine: {result['machine'].get('cpu')} ({result['machine']['cores']} cores); "
             f"FP32 GEMM peak {result['peak_gmacs']:.1f} GMAC/s; {result['macs_per_image'] / 1e6:.0f} M MAC/image", head]
    for r in result["rows"]:
        vs = f"{r['vs_torch']:.2f}x" if r["vs_torch"] else "-"
        mb = f"{r['model_bytes'] / 1e6:.1f}" if r["model_bytes"] else "-"
        lines.append(f"{r['config']:<14}{r['batch']:>6}{r['images_per_s']:>9.1f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
                     f"{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}{vs:>9}{r['infer_images_per_s']:>9.1f}{mb:>7}"
                     f"{r['gmacs']:>8.2f}{r['efficiency']:>7.1%}")
    for s in result["skipped"]:
        lines.append(f"{s['config']:<14} skipped: {s['reason']}")
    if result.get("sustained"):
        s = result["sustained"]
        lines.append(f"sustained {s['config']} {s['seconds']:.0f}s: {s['frames']} frames, p50 {s['p50_ms']:.2f} ms, "
                     f"p99 {s['p99_ms']:.2f} ms, max {s['max_ms']:.2f} ms")
    return "\n".join(lines)


def plot(result: dict, out: str | os.PathLike[str]) -> Path:
    """Throughput bars per batch size, and frame-time distributions at batch 1 (and over time if sustained)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    names = list(dict.fromkeys(r["config"] for r in rows))
    batches = sorted({r["batch"] for r in rows})
    ncols = 3 if result.get("sustained") else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4.2))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        vals = [next((r["images_per_s"] for r in rows if r["config"] == n and r["batch"] == b), 0) for b in batches]
        axes[0].bar(np.arange(len(batches)) + i * width, vals, width, label=n)
    axes[0].set_xticks(np.arange(len(batches)) + width * (len(names) - 1) / 2, [f"batch {b}" for b in batches])
    axes[0].set_ylabel("images / s (end to end)")
    axes[0].set_title("throughput")
    axes[0].legend(fontsize=8)
    b1 = [r for r in rows if r["batch"] == min(batches)]
    axes[1].barh([r["config"] for r in b1], [r["p50_ms"] for r in b1], color="tab:blue", label="p50")
    axes[1].barh([r["config"] for r in b1], [r["p99_ms"] - r["p50_ms"] for r in b1], left=[r["p50_ms"] for r in b1],
                 color="tab:orange", label="p99")
    axes[1].axvline(1000 / 90, color="red", linestyle="--", label="90 Hz frame (11.1 ms)")
    axes[1].set_xlabel(f"frame time at batch {min(batches)} (ms)")
    axes[1].set_title("frame time p50 / p99")
    axes[1].legend(fontsize=8)
    if result.get("sustained"):
        s = result["sustained"]
        axes[2].plot(s["t_s"], s["frame_ms"], lw=0.5)
        axes[2].set_xlabel("time (s)")
        axes[2].set_ylabel("frame time (ms)")
        axes[2].set_title(f"sustained: {s['config']}")
    fig.suptitle(f"edge-t2i bench — {result['machine'].get('cpu', '')}", fontsize=10)
    fig.tight_layout()
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(out)


def write_json(result: dict, out: str | os.PathLike[str]) -> Path:
    return atomic.write_text(out, json.dumps(result, indent=2) + "\n")
