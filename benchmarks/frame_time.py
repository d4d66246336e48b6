"""Frame-time stability at batch 1: ONNX Runtime's and OpenVINO's thread settings, interleaved.

    python benchmarks/frame_time.py PACK [--threads 1,2] [--seconds 60] [--json out.json]

Each configuration is an engine candidate of the pack (runtime/select.py) with one thread setting; all run in
one process, in turns of `--slice` seconds, for `--seconds` each, and each reports p50, p99 and p99/p50 of
its batch-1 `Pipeline.generate` calls (a game's frame budget is its p99). Settings (ONNX Runtime
SessionOptions config entries, OpenVINO properties): ONNX Runtime with its intra-op threads spinning (the
runtime's setting: spinning 500 us, backends/onnxruntime.py DEFAULT_CONFIG), as long as ONNX Runtime's default,
or not at all, with `session.dynamic_block_base` 4 or unset; OpenVINO with its threads pinned or not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from edge_t2i.bench.stats import percentiles_ms  # noqa: E402
from edge_t2i.runtime import backends  # noqa: E402
from edge_t2i.runtime.manifest import read_manifest  # noqa: E402
from edge_t2i.runtime.packfile import read_model  # noqa: E402
from edge_t2i.runtime.pipeline import Pipeline, load_bank  # noqa: E402
from edge_t2i.runtime.select import candidates, io_spec  # noqa: E402

ORT = {"ort-runtime": {}, "ort-spin-default": {"session.intra_op.spin_duration_us": "-1"},
       "ort-block4": {"session.dynamic_block_base": "4"}, "ort-nospin": {"session.intra_op.allow_spinning": "0"}}


def make(manifest, cand, threads: int, setting: str):  # noqa: ANN001, ANN201
    data = read_model(manifest, cand.file)
    if cand.engine == "onnxruntime":
        b = backends.create("onnxruntime", model=data, label=cand.file, precision=cand.precision, threads=threads,
                            config=ORT[setting])
    else:
        b = backends.create("openvino", model=data, label=cand.file, precision=cand.precision, threads=threads,
                            pin=setting == "ov-pinned", precision_hint="f32" if cand.precision == "fp32" else None)
    b.io = io_spec(manifest)
    return Pipeline.single(manifest, b, f"{cand.name} {setting}", load_bank(manifest))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pack")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--slice", type=float, default=1.0)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--json")
    a = ap.parse_args()
    m = read_manifest(a.pack)
    configs = {}
    for threads in (int(t) for t in a.threads.split(",")):
        for cand in candidates(m, "auto", a.precision):
            if not cand.available or cand.engine not in ("onnxruntime", "openvino"):
                continue
            settings = list(ORT) if cand.engine == "onnxruntime" else ["ov-pinned", "ov-unpinned"]
            for setting in settings:
                configs[f"{cand.name} {setting} t{threads}"] = make(m, cand, threads, setting)
    prompts = [configs[next(iter(configs))].bank.texts[0]] if m.conditional else None
    lat: dict[str, list[float]] = {k: [] for k in configs}
    for gen in configs.values():
        for _ in range(20):
            gen.generate(prompts, seeds=[0])
    turns = max(1, round(a.seconds / a.slice))
    seed = 0
    for _ in range(turns):
        for name, gen in configs.items():
            end = time.perf_counter() + a.slice
            while time.perf_counter() < end:
                seed += 1
                t0 = time.perf_counter()
                gen.generate(prompts, seeds=[seed])
                lat[name].append(time.perf_counter() - t0)
    rows = []
    for name, values in lat.items():
        p = percentiles_ms(values)
        rows.append({"config": name, "frames": len(values), **{k: round(v, 3) for k, v in p.items()},
                     "p99_over_p50": round(p["p99_ms"] / p["p50_ms"], 3), "images_per_s": round(1e3 / np.mean(
                         np.array(values) * 1e3), 1)})
        print(f"{name:<40} {len(values):>7} frames  p50 {p['p50_ms']:6.2f} ms  p99 {p['p99_ms']:6.2f} ms  "
              f"p99/p50 {p['p99_ms'] / p['p50_ms']:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"pack": a.pack, "seconds": a.seconds, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
