"""Multiply-accumulates per image, counted from an ONNX graph (the numerator of utilization)."""

from __future__ import annotations

import os

import numpy as np

from edge_t2i.errors import require


def onnx_macs_per_image(onnx_model: str | os.PathLike[str] | bytes) -> int:
    """Multiply-accumulates of one image (batch 1) through Conv, ConvTranspose, Gemm and MatMul.

    Shapes come from ONNX shape inference with the batch fixed to 1; Q/DQ graphs
    count the same as float ones (the arithmetic is the same, only narrower).
    """
    onnx = require("onnx", "convert", "Counting MACs of an ONNX model")
    from onnx import shape_inference

    model = onnx.load_from_string(onnx_model) if isinstance(onnx_model, bytes) else onnx.load(str(onnx_model))
    for tensor in list(model.graph.input) + list(model.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    model = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int]] = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    # through DequantizeLinear, a weight keeps the shape of its quantized initializer
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in shapes:
            shapes.setdefault(node.output[0], shapes[node.input[0]])
    total = 0
    for node in model.graph.node:
        total += node_macs(node.op_type, [shapes.get(i, []) for i in node.input],
                           [shapes.get(o, []) for o in node.output],
                           {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})
    return int(total)


def node_macs(op: str, inputs: list[list[int]], outputs: list[list[int]], attrs: dict) -> int:
    """MACs of one node given its input and output shapes."""
    if op in ("Conv", "ConvTranspose") and len(inputs) > 1 and inputs[1] and outputs and outputs[0]:
        w, out, x = inputs[1], outputs[0], inputs[0]
        group = int(attrs.get("group", 1))
        if op == "Conv":  # each output element: Cin/group * kh * kw MACs
            return int(np.prod(out[1:])) * int(np.prod(w[1:]))
        return int(np.prod(x[1:])) * int(w[1]) * int(np.prod(w[2:])) // max(group, 1) * group
    if op == "Gemm" and len(inputs) > 1 and inputs[0] and inputs[1]:
        k = inputs[0][0] if attrs.get("transA") else inputs[0][-1]
        n = inputs[1][0] if attrs.get("transB") else inputs[1][-1]
        m = inputs[0][-1] if attrs.get("transA") else inputs[0][0]
        return int(m) * int(n) * int(k)
    if op == "MatMul" and len(inputs) > 1 and inputs[0] and inputs[1] and outputs and outputs[0]:
        return int(np.prod(outputs[0])) * int(inputs[0][-1])
    return 0
