"""A projection (not a measurement) of a generator's images/s on Jetson Orin modules, from its ONNX model.

    python benchmarks/jetson_projection.py build/shapes64/generator.fp32.onnx [more.onnx ...] [--batch 16]

Per image: compute = 2 x MACs / (dense INT8 ops/s x EFFICIENCY); memory = bytes moved / bandwidth, where
bytes = the INT8 weights once per batch (/ batch) + every Conv/Gemm output written once and read once in
FP16 (2 bytes; INT8 between layers would halve it); launch = KERNELS_PER_LAYER x (Conv + Gemm count) x
LAUNCH_S per batch (/ batch): small generators are launch-bound. The projection is the slowest of the three. Module
figures (NVIDIA Jetson datasheets): INT8 TOPS are quoted *sparse*; dense is half. Orin Nano has no DLA,
AGX Orin's 275 TOPS include its two DLAs (GPU alone: 170 sparse). Assumptions, written down because they
decide the answer: EFFICIENCY = 0.3 of dense peak for these small-channel convolutions; clocks locked
at the module's maximum power mode (`jetson_clocks`, `nvpmodel -m 0`); pre/post-processing excluded.
"""

from __future__ import annotations

import argparse
import sys

MODULES = {  # name: (GPU dense INT8 tera-ops/s, memory GB/s)
    "Orin Nano 8GB": (40 / 2, 68.0),
    "Orin Nano Super": (67 / 2, 102.0),
    "AGX Orin 64GB (GPU)": (170 / 2, 204.8),
}
EFFICIENCY = 0.3
LAUNCH_S = 8e-6          # one kernel launch on a Jetson GPU (CUDA graphs cut it; TensorRT fuses pointwise ops)
KERNELS_PER_LAYER = 2    # each Conv/Gemm with its fused neighbours, plus about one reformat or pointwise kernel


def model_cost(path: str) -> tuple[int, int, int, int]:
    """(MACs per image, weight elements, Conv/Gemm output elements per image, Conv/Gemm count)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    from edge_t2i.bench.macs import onnx_macs_per_image

    model = shape_inference.infer_shapes(onnx.load(path))
    dims = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
            for v in (*model.graph.value_info, *model.graph.output)}
    weights = sum(numpy_helper.to_array(t).size for t in model.graph.initializer)
    outputs = 0
    layers = sum(n.op_type in ("Conv", "Gemm") for n in model.graph.node)
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm") and node.output[0] in dims:
            n = 1
            for d in dims[node.output[0]][1:]:
                n *= d
            outputs += n
    return onnx_macs_per_image(path), weights, outputs, layers


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="FP32 ONNX generators")
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args()
    print(f"{'model':<40}{'GMAC':>7}" + "".join(f"{m:>22}" for m in MODULES))
    for path in a.models:
        macs, weights, outputs, layers = model_cost(path)
        bytes_per_image = weights / a.batch + 2 * 2 * outputs
        launch_s = KERNELS_PER_LAYER * layers * LAUNCH_S / a.batch
        cells = []
        for tops, gbs in MODULES.values():
            bounds = {"c": 2 * macs / (tops * 1e12 * EFFICIENCY), "m": bytes_per_image / (gbs * 1e9), "l": launch_s}
            which = max(bounds, key=lambda k: bounds[k])
            cells.append(f"{1 / bounds[which]:>18,.0f} {which}/s")
        print(f"{path[-40:]:<40}{macs / 1e9:>7.2f}" + "".join(f"{c:>22}" for c in cells))
    print(f"images/s at batch {a.batch}; bound by c: compute (at {EFFICIENCY:.0%} of dense INT8), m: memory, "
          f"l: kernel launches ({KERNELS_PER_LAYER} x {LAUNCH_S * 1e6:.0f} us per Conv/Gemm per batch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
