"""Per-operator time of a pack's FP32 and INT8 models in ONNX Runtime (its built-in profiler).

    python benchmarks/profile_ort.py build/shapes64 [--batch 1 16] [--threads 2] [--runs 50]

Prints, per model and batch, the share of kernel time by operator type: where INT8
gains (QLinearConv vs Conv) and where it pays (QuantizeLinear/DequantizeLinear and
the float ops between quantized convolutions).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np


def profile(model: str, batch: int, threads: int, runs: int) -> tuple[float, list[tuple[str, float]]]:
    import onnxruntime as ort

    from edge_t2i.runtime.backends.onnxruntime import session_options

    prefix = os.path.join(tempfile.mkdtemp(), "prof")
    sess = ort.InferenceSession(model, session_options(threads, profile_prefix=prefix), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)  # every input the model has (z alone for an unconditional generator)
    feeds = {i.name: rng.standard_normal((batch, i.shape[1]), dtype=np.float32) for i in sess.get_inputs()}
    for _ in range(runs):
        sess.run(None, feeds)
    events = json.load(open(sess.end_profiling()))
    per_op: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    return total / runs / 1e3, [(op, 100.0 * t / total) for op, t in per_op.most_common(12)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pack")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--runs", type=int, default=50)
    a = p.parse_args()
    from edge_t2i.runtime.manifest import read_manifest
    from edge_t2i.runtime.pipeline import cpu_model_for

    manifest = read_manifest(a.pack)
    for batch in a.batch:
        for precision in ("fp32", "int8"):
            path = str(cpu_model_for(manifest, precision)[0])  # the file the runtime runs on this CPU
            ms, ops = profile(path, batch, a.threads, a.runs if batch == 1 else max(5, a.runs // 8))
            print(f"batch {batch:>2} {precision} ({os.path.basename(path)}): {ms:6.2f} ms kernel time/run  " +
                  "  ".join(f"{op} {share:.0f}%" for op, share in ops[:9]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
