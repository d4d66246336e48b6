"""OpenVINO on one model file: compiled for a dynamic batch (as the pack's ONNX declares it) against the same
model reshaped to a static batch (what edge_t2i's OpenVINO backend compiles for batch 1 and 16).

    python benchmarks/static_shapes.py build/dfgan64/generator.fp32.onnx --batch 1 --rounds 8 --calls 100

Interleaved in one process (rounds of `--calls` calls each, the first quarter of each round untimed); prints
the median ms per call of each and the largest output difference. OpenVINO's defaults otherwise (LATENCY hint,
its default inference precision: bf16 on CPUs with native bf16), 2 threads unless --threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="an ONNX generator whose inputs are float32 [batch, size]")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads, "NUM_STREAMS": 1}
    dynamic = core.compile_model(args.model, "CPU", config).create_infer_request()
    model = core.read_model(args.model)
    model.reshape({i.get_any_name(): [args.batch, *list(i.get_partial_shape())[1:]] for i in model.inputs})
    static = core.compile_model(model, "CPU", config).create_infer_request()
    rng = np.random.default_rng(0)
    feeds = {i.get_any_name(): rng.standard_normal((args.batch, i.get_partial_shape()[1].get_length()))
             .astype(np.float32) for i in model.inputs}

    def run(request):  # noqa: ANN001, ANN202
        request.infer(feeds, share_inputs=True)
        return np.array(request.get_output_tensor(0).data, copy=True)

    print(f"largest |dynamic - static| output difference: {float(np.abs(run(dynamic) - run(static)).max()):.3g}")
    times: dict[str, list[float]] = {"dynamic": [], "static": []}
    for _ in range(args.rounds):
        for name, request in (("dynamic", dynamic), ("static", static)):
            for i in range(args.calls):
                t0 = time.perf_counter()
                run(request)
                if i >= args.calls // 4:
                    times[name].append(time.perf_counter() - t0)
    for name, v in times.items():
        print(f"{name:8s} median {statistics.median(v) * 1e3:.3f} ms per call of batch {args.batch}")


if __name__ == "__main__":
    main()
