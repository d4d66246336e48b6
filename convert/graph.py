"""Graph facts and rewrites the INT8 stage needs, on ONNX generators of any family.

- `fold_batch_norm`: BatchNormalization after a Conv or ConvTranspose folded into its weights and bias (the
  DCGAN's inference-mode BatchNorm; TensorRT folds it too, ONNX Runtime's CPU provider has no Q/DQ selector for
  it, so unfolded it would stay float between two INT8 layers).
- `weighted_layers`: every Conv, ConvTranspose, Gemm and MatMul with a constant weight, with its MACs per image
  (from ONNX shape inference) and whether its input and weight arrive through DequantizeLinear (INT8).
- `output_layers`: the weighted layers that write the image with no other weighted layer after them (the
  to-RGB convolution): kept in float by default, since their 8-bit activations band flat colour areas (measured
  on the trained DCGAN of PyPI `gan-face-generate`, 512 seeds: PSNR vs FP32 23.7 dB with it in INT8, 36.1 dB
  without, percentile 99.999; 28.7 vs 39.2 dB at 99.9; it is 3% of the MACs: docs/real-generators.md).
- `coverage`: the fraction of MACs and of weighted layers in INT8, what the pack reports and the convert refuses
  below a floor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edge_t2i.errors import ConvertError, require
from edge_t2i.runtime.manifest import Int8Coverage

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Layer:
    name: str
    op_type: str
    macs: int          # multiply-accumulates per image (batch 1)
    int8: bool         # input and weight both read through DequantizeLinear


def _shapes(model) -> dict[str, list[int]]:  # noqa: ANN001 - onnx.ModelProto
    """Tensor name -> dims at batch 1 (ONNX shape inference; symbolic dims read as 1)."""
    onnx = require("onnx", "convert", "Reading an ONNX graph's shapes")
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)  # data_prop: Shape -> Reshape chains
    graph = inferred.graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for v in [*graph.input, *graph.value_info, *graph.output]:
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            shapes[v.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim]
    return shapes


def _weight_source(name: str, producers: dict, inits: set[str]) -> tuple[str | None, bool]:
    """(the initializer a weight input comes from, through a DequantizeLinear or not)."""
    if name in inits:
        return name, False
    node = producers.get(name)
    if node is not None and node.op_type == "DequantizeLinear":
        if node.input[0] in inits:             # INT8 weights stored (ONNX Runtime's quantizer)
            return node.input[0], True
        q = producers.get(node.input[0])      # float weights behind Q -> DQ (ModelOpt without --dq_only)
        if q is not None and q.op_type == "QuantizeLinear" and q.input[0] in inits:
            return q.input[0], True
    return None, False


def _macs(node, shapes: dict[str, list[int]], weight: str) -> int:  # noqa: ANN001 - onnx.NodeProto
    w, out = shapes.get(weight), shapes.get(node.output[0])
    if not w:
        return 0
    if node.op_type == "ConvTranspose":  # every input pixel scatters into (C_out / groups) x kernel outputs
        x = shapes.get(node.input[0])
        return int(np.prod(x[1:]) * np.prod(w[1:])) if x else 0
    if node.op_type == "Conv":           # every output pixel gathers (C_in / groups) x kernel inputs
        return int(np.prod(out[1:]) * np.prod(w[1:])) if out else 0
    if node.op_type == "Gemm":
        return int(np.prod(w))
    return int(np.prod(out[1:-1]) * np.prod(w)) if out else int(np.prod(w))  # MatMul with a constant [K, N]


def weighted_layers(model) -> list[Layer]:  # noqa: ANN001 - onnx.ModelProto
    """Every Conv / ConvTranspose / Gemm / MatMul whose weight (input 1) is a constant, in graph order."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    shapes = _shapes(model)
    layers = []
    for node in graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2:
            continue
        weight, through_dq = _weight_source(node.input[1], producers, inits)
        if weight is None:
            continue
        act = producers.get(node.input[0])
        int8 = through_dq and act is not None and act.op_type == "DequantizeLinear"
        layers.append(Layer(node.name, node.op_type, _macs(node, shapes, weight), int8))
    return layers


def coverage(onnx_path: str | os.PathLike[str]) -> Int8Coverage:
    """The INT8 coverage of a (Q/DQ) model file. Raises: MissingExtraError (no onnx)."""
    onnx = require("onnx", "convert", "Measuring INT8 coverage")
    layers = weighted_layers(onnx.load(str(onnx_path)))
    macs = sum(x.macs for x in layers)
    macs_int8 = sum(x.macs for x in layers if x.int8)
    return Int8Coverage(macs_int8 / macs if macs else 0.0, sum(x.int8 for x in layers), len(layers), macs_int8, macs)


def output_layers(onnx_path: str | os.PathLike[str]) -> list[str]:
    """Names of the weighted layers the image output depends on with no weighted layer in between."""
    onnx = require("onnx", "convert", "Reading an ONNX graph")
    model = onnx.load(str(onnx_path), load_external_data=False)
    weighted = {x.name for x in weighted_layers(model)}
    producers = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    found: list[str] = []
    seen: set[int] = set()  # by position: a user's graph may leave node names empty
    stack = [o.name for o in model.graph.output]
    while stack:
        index = producers.get(stack.pop())
        if index is None or index in seen:
            continue
        seen.add(index)
        node = model.graph.node[index]
        if node.name in weighted and node.name:
            found.append(node.name)
        else:
            stack.extend(node.input)
    return sorted(found)


def name_nodes(model) -> int:  # noqa: ANN001 - onnx.ModelProto
    """Give every unnamed node of `model` a unique name (`<op_type>_<i>`), in place: layers are kept in float and
    reported by name. Returns: how many were named."""
    taken = {n.name for n in model.graph.node if n.name}
    named = 0
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name, k = f"{node.op_type}_{i}", 0
            while name in taken:
                k += 1
                name = f"{node.op_type}_{i}_{k}"
            node.name = name
            taken.add(name)
            named += 1
    return named


def fold_batch_norm(onnx_path: str | os.PathLike[str]) -> int:
    """Fold every inference BatchNormalization that directly follows a Conv or ConvTranspose (constant weight,
    group 1 for ConvTranspose, the conv output read by nothing else) into that layer's weight and bias, in place.

    y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta: the scale multiplies the weight's output-channel
    axis (Conv: axis 0; ConvTranspose: axis 1) and the bias becomes (b - mean) * scale + beta.
    Returns: how many were folded. Raises: ConvertError (a non-constant BatchNorm parameter)."""
    onnx = require("onnx", "convert", "Folding BatchNorm")
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    named = name_nodes(model)
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    outputs = {o.name for o in graph.output}
    folded, dropped = 0, []
    for bn in graph.node:
        conv = producers.get(bn.input[0]) if bn.op_type == "BatchNormalization" else None
        if conv is None or not _foldable(conv, bn, inits, readers, outputs):
            continue
        _fold(conv, bn, inits, graph, numpy_helper)
        dropped.append(bn)
        folded += 1
    for bn in dropped:
        graph.node.remove(bn)
    if folded:
        used = {i for n in graph.node for i in n.input}
        keep = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        inputs = [v for v in graph.input if v.name in used or v.name not in inits]  # IR < 4 lists initializers
        del graph.input[:]
        graph.input.extend(inputs)
    if folded or named:
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx's ValidationError
            raise ConvertError(f"folding BatchNorm left an invalid graph ({str(exc).splitlines()[0][:200]})") from exc
        onnx.save(model, str(onnx_path))
    return folded


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_1`, `base_2`, ... : the first name not in `taken` (added to it)."""
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _foldable(conv, bn, inits: dict, readers: dict[str, int], outputs: set[str]) -> bool:  # noqa: ANN001
    if conv.op_type not in ("Conv", "ConvTranspose") or conv.input[1] not in inits:
        return False
    if readers.get(conv.output[0], 0) != 1 or conv.output[0] in outputs or len(bn.output) != 1:
        return False
    if any(a.name == "training_mode" and a.i for a in bn.attribute):
        return False
    group = next((a.i for a in conv.attribute if a.name == "group"), 1)
    if conv.op_type == "ConvTranspose" and group != 1:
        return False
    return all(name in inits for name in bn.input[1:5]) and (len(conv.input) < 3 or conv.input[2] in inits)


def _fold(conv, bn, inits: dict, graph, numpy_helper) -> None:  # noqa: ANN001
    gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    scale = gamma / np.sqrt(var + eps)
    w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
    axis = 1 if conv.op_type == "ConvTranspose" else 0
    shape = [1] * w.ndim
    shape[axis] = -1
    w = w * scale.reshape(shape)
    b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 else np.zeros_like(mean)
    b = (b - mean) * scale + beta
    taken = {t.name for t in graph.initializer}
    w_name, b_name = (fresh_name(f"{conv.name}.folded_{kind}", taken) for kind in ("weight", "bias"))
    graph.initializer.extend([numpy_helper.from_array(w.astype(np.float32), w_name),
                              numpy_helper.from_array(b.astype(np.float32), b_name)])
    conv.input[1] = w_name
    if len(conv.input) > 2:
        conv.input[2] = b_name
    else:
        conv.input.append(b_name)
    conv.output[0] = bn.output[0]
    if len(b) != w.shape[axis]:
        raise ConvertError(f"BatchNorm {bn.name} has {len(b)} channels, {conv.name} writes {w.shape[axis]}")
