"""What a benchmark run reports: the machine it ran on, the table, the JSON file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from edge_t2i import _io
from edge_t2i.runtime import cpu


def machine_info() -> dict:
    info: dict = {"platform": platform.platform(), "machine": platform.machine(), "cores": os.cpu_count(),
                  "python": platform.python_version()}
    host = cpu.host_record()
    info.update(cpu=host["cpu"], int8_isa=host["int8_isa"], vnni=host["vnni"])
    for dist in ("numpy", "onnxruntime", "torch", "openvino", "tensorrt"):
        info[dist] = _io.package_version(dist)
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


def table(result: dict) -> str:
    width = max([14, *(len(r["config"]) + 1 for r in result["rows"])])
    head = (f"{'config':<{width}}{'engine':<14}{'prec':<5}{'batch':>6}{'img/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'max ms':>8}{'vs torch':>9}{'infer/s':>9}{'MB':>6}{'GMAC/s':>8}{'util':>7}{'mach':>7}")
    peaks = result.get("peak_gmacs") or {}
    peak_text = "; ".join(f"{e} GEMM peaks FP32 {p['fp32']:.0f} / INT8 {p['int8']:.0f} GMAC/s"
                          for e, p in peaks.items() if isinstance(p, dict) and "fp32" in p and "int8" in p)
    macs = result.get("macs_per_image")
    mac_text = f"{macs / 1e6:.0f} M MAC/image" if macs else "no MAC count"
    lines = [f"machine: {result['machine'].get('cpu')} ({result['machine']['cores']} cores, "
             f"{result['machine'].get('int8_isa', '?')}); {result.get('threads')} threads; "
             f"{peak_text or 'no GEMM peaks'}; {mac_text}", head]
    for r in result["rows"]:
        vs = f"{r['vs_torch']:.2f}x" if r["vs_torch"] else "-"
        mb = f"{r['model_bytes'] / 1e6:.1f}" if r["model_bytes"] else "-"
        lines.append(f"{r['config']:<{width}}{str(r['backend']):<14}{r['precision']:<5}{r['batch']:>6}"
                     f"{r['images_per_s']:>9.1f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['max_ms']:>8.2f}{vs:>9}"
                     f"{r['infer_images_per_s']:>9.1f}{mb:>6}{_or_dash(r['gmacs'], '.1f'):>8}"
                     f"{_or_dash(r['utilization'], '.1%'):>7}{_or_dash(r.get('machine_utilization'), '.1%'):>7}")
    for v in result.get("verdict", []):
        line = (f"auto batch {v['batch']}: {v['ratio']:.2f}x the fastest raw engine with its default options "
                f"({v['best_raw_config']}, {v['best_raw']:.0f} img/s)")
        if "ratio_static" in v:
            line += (f"; {v['ratio_static']:.2f}x OpenVINO compiled for this batch by hand ({v['best_static_config']}, "
                     f"{v['best_static']:.0f} img/s)")
        lines.append(line)
    for v in result.get("int8_vs_fp32", []):
        lines.append(f"auto-int8 / auto-fp32 batch {v['batch']}: {v['ratio']:.2f}x")
    for e, p in peaks.items():
        if isinstance(p, dict) and p.get("raised_by"):
            lines.append(f"{e} peak raised to the best measured rate by: {', '.join(p['raised_by'])}")
    for s in result["skipped"]:
        lines.append(f"{s['config']:<{width}} skipped: {s['reason']}")
    if result.get("sustained"):
        s = result["sustained"]
        lines.append(f"sustained {s['config']} {s['seconds']:.0f}s: {s['frames']} frames, p50 {s['p50_ms']:.2f} ms, "
                     f"p99 {s['p99_ms']:.2f} ms, max {s['max_ms']:.2f} ms, p99/p50 {s['p99_over_p50']:.2f}")
    return "\n".join(lines)


def _or_dash(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_json(result: dict, out: str | os.PathLike[str]) -> Path:
    return _io.write_text(out, json.dumps(result, indent=2) + "\n")
