"""`edge-t2i bench --synthetic RES,...`: how cost grows with the generator's size.

The same generator family as the shipped one (NetG, edge_t2i/models/networks.py) with random weights at
each resolution: exported, quantized (every Conv and Gemm, Q/DQ, calibrated on random prompts) and timed
FP32 vs INT8 in ONNX Runtime, interleaved, at the benchmark's thread count. Quality is not measured
(random weights); speed and memory depend only on the structure.
JSON: {"machine", "threads", "ngf", "rows": [{"resolution", "macs_per_image", "params", "batch",
"fp32_images_per_s", "int8_images_per_s", "int8_gain", "fp32_mb", "int8_mb", "fp32_rss_mb", "int8_rss_mb"}]}
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_t2i.bench.macs import onnx_macs_per_image
from edge_t2i.bench.report import machine_info
from edge_t2i.bench.runner import SLICE_S, _rss_mb
from edge_t2i.errors import InputError, require

log = logging.getLogger(__name__)
RESOLUTIONS = (32, 64, 128, 256)  # ModelConfig.RESOLUTIONS
NZ, COND_DIM = 100, 384  # the shipped family's noise and sentence sizes (build_models uses them)


def build_models(resolution: int, ngf: int, folder: Path, seed: int = 0) -> dict[str, Path]:
    """Random-weight NetG at `resolution` -> {"fp32", "int8"} ONNX files in `folder` (INT8: the CPU variant
    where this CPU has VNNI, as the runtime would pick). Raises: MissingExtraError (extra `convert`)."""
    torch = require("torch", "convert", "bench --synthetic")
    from edge_t2i import calib
    from edge_t2i.convert.export import export_onnx
    from edge_t2i.convert.quantize import QuantConfig, quantize_int8, to_u8_activations
    from edge_t2i.models.checkpoint import save_generator
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG
    from edge_t2i.runtime import cpu

    torch.manual_seed(seed)
    g = NetG(ModelConfig(resolution=resolution, ngf=ngf, ndf=ngf, nz=NZ, cond_dim=COND_DIM, noise_in_fusion=8))
    with torch.no_grad():  # fusion layers that respond to text, not the identity they start as
        for name, p in g.named_parameters():
            if "fc2.weight" in name:
                p.normal_(0, 0.05)
    ckpt = save_generator(folder / "ckpt", g.eval(), {"steps": 0})
    fp32 = export_onnx(ckpt, folder / "fp32.onnx").path
    rng = np.random.default_rng(seed)
    prompts = rng.standard_normal((32, g.config.cond_dim)).astype(np.float32)
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    data = calib.calibration_batches(prompts, 32, g.config.nz, seed=seed)
    int8 = quantize_int8(fp32, data, folder / "int8.onnx", QuantConfig(op_types=("Conv", "Gemm")))
    if cpu.int8_isa() in cpu.VNNI:
        to_u8_activations(int8, folder / "int8.u8s8.onnx")
        int8 = folder / "int8.u8s8.onnx"
    return {"fp32": fp32, "int8": int8}


def _time_pair(paths: dict[str, Path], nz: int, dim: int, batch: int, seconds: float,
               threads: int) -> dict[str, float | dict]:
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

    rng = np.random.default_rng(batch)
    feeds = {"z": rng.standard_normal((batch, nz), dtype=np.float32),
             "embedding": rng.standard_normal((batch, dim), dtype=np.float32) * 0.05}
    sessions, rss = {}, {}
    for key, path in paths.items():
        before = _rss_mb()
        sessions[key] = OnnxRuntimeBackend(path, threads=threads)
        sessions[key].infer(feeds)
        rss[key] = _rss_mb() - before
    times: dict[str, list[float]] = {k: [] for k in sessions}
    end = time.perf_counter() + seconds * len(sessions)
    while time.perf_counter() < end:  # interleaved turns, so drift hits both alike
        for key, s in sessions.items():
            turn = time.perf_counter() + SLICE_S
            while time.perf_counter() < turn:
                t0 = time.perf_counter()
                s.infer(feeds)
                times[key].append(time.perf_counter() - t0)
    for s in sessions.values():
        s.close()
    return {"ips": {k: batch / float(np.median(v)) for k, v in times.items()}, "rss": rss}


def synthetic_bench(resolutions: list[int], ngf: int = 16, batches: tuple[int, ...] = (1, 16),
                    seconds: float = 2.0, threads: int = 0, show: Callable[[str], None] = log.info) -> dict:
    """FP32 vs INT8 images/s (median call), model size and memory of random-weight NetG per resolution.
    Raises: InputError (a resolution not in RESOLUTIONS, ngf outside 4..64), MissingExtraError."""
    bad = [r for r in resolutions if r not in RESOLUTIONS]
    if bad or not resolutions:
        raise InputError(f"--synthetic takes resolutions among {', '.join(map(str, RESOLUTIONS))}, got {bad or 'none'}")
    if not 4 <= ngf <= 64:
        raise InputError(f"--ngf must be in [4, 64], got {ngf}")
    rows = []
    for res in resolutions:
        with tempfile.TemporaryDirectory(prefix="edge-t2i-synthetic-") as tmp:
            t0 = time.perf_counter()
            paths = build_models(res, ngf, Path(tmp))
            macs = onnx_macs_per_image(paths["fp32"])
            show(f"  {res} px: {macs / 1e9:.2f} GMAC/image, built in {time.perf_counter() - t0:.0f}s")
            for b in batches:
                m = _time_pair(paths, NZ, COND_DIM, b, seconds, threads)
                ips, rss = m["ips"], m["rss"]
                rows.append({"resolution": res, "macs_per_image": macs, "batch": b,
                             "fp32_images_per_s": round(ips["fp32"], 2), "int8_images_per_s": round(ips["int8"], 2),
                             "int8_gain": round(ips["int8"] / ips["fp32"], 3),
                             "fp32_mb": round(paths["fp32"].stat().st_size / 1e6, 2),
                             "int8_mb": round(paths["int8"].stat().st_size / 1e6, 2),
                             "fp32_rss_mb": round(rss["fp32"], 1), "int8_rss_mb": round(rss["int8"], 1)})
                show(f"    batch {b}: FP32 {ips['fp32']:.1f} img/s, INT8 {ips['int8']:.1f} img/s "
                     f"({ips['int8'] / ips['fp32']:.2f}x)")
    return {"machine": machine_info(), "threads": threads, "ngf": ngf, "rows": rows}


def synthetic_table(result: dict) -> str:
    lines = [f"{'res':>5}{'GMAC/img':>10}{'batch':>6}{'FP32 img/s':>12}{'INT8 img/s':>12}{'gain':>7}"
             f"{'FP32 MB':>9}{'INT8 MB':>9}{'RSS+ MB':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['resolution']:>5}{r['macs_per_image'] / 1e9:>10.2f}{r['batch']:>6}"
                     f"{r['fp32_images_per_s']:>12.1f}{r['int8_images_per_s']:>12.1f}{r['int8_gain']:>6.2f}x"
                     f"{r['fp32_mb']:>9.1f}{r['int8_mb']:>9.1f}{r['int8_rss_mb']:>9.0f}")
    return "\n".join(lines)


def synthetic_plot(result: dict, out: str | Path) -> Path:
    """PNG: images/s (FP32, INT8) and INT8 gain against GMAC per image, one line per batch size."""
    require("matplotlib", "bench", "The synthetic benchmark plot (--plot)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edge_t2i import _io

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for b in sorted({r["batch"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["batch"] == b]
        x = [r["macs_per_image"] / 1e9 for r in rows]
        ax1.plot(x, [r["fp32_images_per_s"] for r in rows], "o--", label=f"FP32 batch {b}")
        ax1.plot(x, [r["int8_images_per_s"] for r in rows], "o-", label=f"INT8 batch {b}")
        ax2.plot(x, [r["int8_gain"] for r in rows], "o-", label=f"batch {b}")
        for r in rows:
            ax1.annotate(f"{r['resolution']}px", (r["macs_per_image"] / 1e9, r["int8_images_per_s"]), fontsize=7)
    ax1.set(xscale="log", yscale="log", xlabel="GMAC per image", ylabel="images/s (ONNX Runtime, CPU)")
    ax2.set(xscale="log", xlabel="GMAC per image", ylabel="INT8 / FP32 images/s")
    ax2.axhline(1.0, color="gray", lw=0.5)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"NetG (ngf {result['ngf']}), random weights: {result['machine'].get('cpu')}, "
                 f"{result['machine'].get('int8_isa')}, {result['threads'] or 'all'} threads", fontsize=9)
    fig.tight_layout()
    with _io.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(out)
