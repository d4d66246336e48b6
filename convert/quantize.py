"""Stage 4: post-training INT8 as explicit-quantization Q/DQ ONNX.

The one INT8 format that ONNX Runtime runs and that TensorRT 10 and 11 build
engines from. Weights are per-channel symmetric INT8 and activations symmetric
INT8 (TensorRT requires zero points of 0). Default quantizer: ONNX Runtime's
`quantize_static`; optional: NVIDIA ModelOpt (TensorRT-oriented Q/DQ placement).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.calib import CalibrationData
from edge_t2i.errors import ConvertError, MissingExtraError, did_you_mean
from edge_t2i.progress import third_party_quiet

log = logging.getLogger(__name__)
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANTIZERS = ("ort", "modelopt")
# Our calibration methods -> `python -m modelopt.onnx.quantization --calibration_method` (its INT8 choices are
# max and entropy; it has no percentile calibrator, so percentile with ModelOpt is refused, not approximated).
MODELOPT_METHODS = {"minmax": "max", "entropy": "entropy"}
# Every Conv, ConvTranspose (DCGAN-family upsampling; per-channel weights on its output-channel axis 1, which
# ONNX Runtime's QDQ quantizer uses for it) and every Gemm (the fusion MLPs too) in INT8. The Gemms were kept in float while ONNX Runtime
# ran their S8S8 Q/DQ unfused (dequantizing weights every run); with U8S8 activations (the CPU variant,
# to_u8_activations) it fuses all 33 into QGemm. Measured on the shipped generator, ONNX Runtime 1.32,
# 1 thread, Intel Xeon (AVX-512 VNNI), batch 1 / 16: FP32 2.58 / 39.1 ms, INT8 Conv+Gemm U8S8 1.62 / 22.5 ms.
OPS_TO_QUANTIZE = ("Conv", "ConvTranspose", "Gemm")
FLOAT_BY_DESIGN = ("/text_adapter/",)  # node-name prefixes never quantized: see float_by_design
QUANTIZABLE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Mul", "Add", "LeakyRelu", "Resize")


@dataclass(frozen=True)
class QuantConfig:
    method: str = "percentile"
    quantizer: str = "ort"
    percentile: float = 99.999
    exclude: tuple[str, ...] = field(default_factory=tuple)  # node names kept in float
    op_types: tuple[str, ...] = OPS_TO_QUANTIZE

    def __post_init__(self) -> None:
        for op in self.op_types:
            if op not in QUANTIZABLE_OPS:
                raise ConvertError(did_you_mean(op, QUANTIZABLE_OPS, "operator type to quantize"))
        if self.method not in CALIBRATION_METHODS:
            raise ConvertError(did_you_mean(self.method, CALIBRATION_METHODS, "calibration method"))
        if self.quantizer not in QUANTIZERS:
            raise ConvertError(did_you_mean(self.quantizer, QUANTIZERS, "quantizer"))
        if not 90.0 <= self.percentile <= 100.0:
            raise ConvertError(f"percentile must be in [90, 100], got {self.percentile}")
        if self.quantizer == "modelopt" and self.method not in MODELOPT_METHODS:
            raise ConvertError(f"--quantizer modelopt has no {self.method} calibration (ModelOpt's INT8 methods are "
                               "max and entropy): pass --calib-method minmax or entropy")


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over any iterable of feed dicts."""

    def __init__(self, data: CalibrationData):
        self.data = data
        self._it = iter(data)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.data)

    def __iter__(self):  # noqa: ANN204 - qdq_loss_debug iterates the reader
        return iter(self.data)


def quantizable_nodes(onnx_path: str | os.PathLike[str], op_types: tuple[str, ...] = OPS_TO_QUANTIZE) -> list[str]:
    """Names of the nodes of `op_types` that may be quantized (not the ones float_by_design keeps)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in op_types and not n.name.startswith(FLOAT_BY_DESIGN)]


def float_by_design(onnx_path: str | os.PathLike[str], op_types: tuple[str, ...] = OPS_TO_QUANTIZE) -> list[str]:
    """Nodes of `op_types` always kept in float: the text adapter's attribute classifier (networks.TextAdapter).
    Its argmax turns a small INT8 error into another caption, for 11 k MACs per image of savings (measured with
    an earlier, softmax-mixing adapter: all-INT8 PSNR 29.6 dB with it quantized, 32.8 dB without)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in op_types and n.name.startswith(FLOAT_BY_DESIGN)]


def quantize_int8(fp32_onnx: str | os.PathLike[str], calibration: CalibrationData, out: str | os.PathLike[str],
                  config: QuantConfig = QuantConfig()) -> Path:
    """Write an explicit-quantization INT8 model of `fp32_onnx` calibrated on `calibration`; returns `out`.

    QuantizeLinear/DequantizeLinear pairs (ONNX operator spec) on the inputs of `config.op_types`:
    weights per-channel symmetric INT8 (on the output-channel axis: 0 for Conv and Gemm, 1 for ConvTranspose),
    activations symmetric INT8 with zero
    point 0, as TensorRT's explicit quantization requires (TensorRT developer guide, "Working with
    Quantized Types"). Nodes in `config.exclude` stay float. The calibrator keeps the activations of
    every calibration batch in memory until it computes the ranges (ONNX Runtime's calibrators: about 40 MB
    per batch of 8 for the shipped 64 px generator, about 190 MB per sample for a 256 px DF-GAN; its
    CalibMaxIntermediateOutputs option is not used: in ONNX Runtime 1.32 the MinMax calibrator discards each
    full chunk without computing its ranges). The written model imports only the opset domains its
    nodes use (ONNX Runtime 1.17 refuses an unused ai.onnx.ml import).
    Raises: ConvertError (quantization failed), MissingExtraError (ModelOpt asked for, not installed)."""
    config = replace(config, exclude=tuple(dict.fromkeys(config.exclude + tuple(float_by_design(fp32_onnx,
                                                                                            config.op_types)))))
    present = quantizable_nodes(fp32_onnx, config.op_types)
    if not [n for n in present if n not in config.exclude]:
        why = (f"its only ones ({', '.join(present)}) are kept in float (the layers that write the image: "
               "--quantize-output quantizes them)" if present else "name its layer types with --quantize-ops")
        raise ConvertError(f"the model has no layer of the quantized operator types ({', '.join(config.op_types)}) "
                           f"left to quantize: {why}, or convert with --precision fp32")
    if config.quantizer == "modelopt":
        return _quantize_modelopt(fp32_onnx, calibration, out, config)
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[config.method]
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "CalibPercentile": config.percentile,
             "CalibMovingAverage": False}
    with tempfile.TemporaryDirectory() as tmpdir:
        pre = Path(tmpdir) / "pre.onnx"
        try:
            with third_party_quiet():
                quant_pre_process(str(fp32_onnx), str(pre), skip_symbolic_shape=True)
        except Exception:  # pre-processing is an optimisation: quantize the original if it fails
            pre = Path(fp32_onnx)
        with _io.atomic_path(out) as tmp:
            try:
                with contextlib.redirect_stdout(io.StringIO()) as chatter, third_party_quiet():  # calibrator prints
                    quantize_static(
                        str(pre), str(tmp), _Reader(calibration), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(config.op_types), per_channel=True, reduce_range=False,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(config.exclude), calibrate_method=method, extra_options=extra,
                    )
                log.debug("quantize_static: %s", chatter.getvalue().strip())
            except Exception as exc:
                raise ConvertError(f"INT8 quantization failed: {exc}") from exc
            prune_opset_imports(tmp)
    return Path(out)


def to_u8_activations(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Write `src` with every activation QuantizeLinear/DequantizeLinear pair in uint8 (zero point z + 128)
    instead of int8 (zero point z): the same quantization grid, value for value (u = s + 128), so the
    model computes the same function. Weights stay int8 (their DequantizeLinear reads an initializer).

    Why: on x86, ONNX Runtime fuses U8S8 Q/DQ into QLinearConv/QGemm everywhere, S8S8 only partly
    (measured here: 9 of 12 Convs and 1 of 33 Gemms). TensorRT needs int8 with zero point 0, so the
    pack keeps the S8S8 model as its INT8 model and this one as the ONNX Runtime CPU variant.
    Returns: the number of activation QuantizeLinear nodes converted. Raises: ConvertError."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    shifted: dict[str, str] = {}

    def shifted_zero_point(name: str) -> str:
        if name not in shifted:
            if name not in inits:
                raise ConvertError(f"zero point {name!r} is not an initializer: cannot shift it to uint8")
            zp = numpy_helper.to_array(inits[name])
            if zp.dtype != np.int8:
                raise ConvertError(f"zero point {name!r} is {zp.dtype}, expected int8")
            tensor = numpy_helper.from_array((zp.astype(np.int16) + 128).astype(np.uint8), f"{name}_u8")
            graph.initializer.append(tensor)
            shifted[name] = tensor.name
        return shifted[name]

    converted = 0
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) == 3:
            node.input[2] = shifted_zero_point(node.input[2])
            converted += 1
        elif (node.op_type == "DequantizeLinear" and len(node.input) == 3 and node.input[0] in producer
              and producer[node.input[0]].op_type == "QuantizeLinear"):
            node.input[2] = shifted_zero_point(node.input[2])
    used = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in used or t.name not in shifted]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    with _io.atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return converted


def prune_opset_imports(path: str | os.PathLike[str]) -> None:
    """Drop opset imports of domains no node uses (the default domain stays), in place."""
    import onnx

    model = onnx.load(str(path))
    used = {n.domain or "" for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if (o.domain or "") in used]
    if len(keep) != len(model.opset_import):
        del model.opset_import[:]
        model.opset_import.extend(keep)
        onnx.save(model, str(path))


def modelopt_command(fp32_onnx: str | os.PathLike[str], calib_npz: str | os.PathLike[str],
                     out: str | os.PathLike[str], config: QuantConfig) -> list[str]:
    """The `python -m modelopt.onnx.quantization` command line that carries `config`: method, the operator
    types to quantize, and the nodes kept in float (ModelOpt reads each as a regular expression matched at the
    start of node names with re.match, so each name is escaped and anchored to select that node only).
    Float parts stay FP32 (--high_precision_dtype fp32: newer ModelOpt converts them to FP16 by default)."""
    if config.method not in MODELOPT_METHODS:
        raise ConvertError(f"--quantizer modelopt has no {config.method} calibration (ModelOpt's INT8 methods are "
                           "max and entropy): pass --calib-method minmax or entropy")
    cmd = [sys.executable, "-m", "modelopt.onnx.quantization", "--onnx_path", str(fp32_onnx),
           "--quantize_mode", "int8", "--calibration_method", MODELOPT_METHODS[config.method],
           "--calibration_data_path", str(calib_npz), "--calibration_eps", "cpu",
           "--op_types_to_quantize", *config.op_types, "--high_precision_dtype", "fp32",
           "--output_path", str(out)]
    if config.exclude:
        cmd += ["--nodes_to_exclude", *(re.escape(name) + "$" for name in config.exclude)]
    return cmd


def _quantize_modelopt(fp32_onnx: str | os.PathLike[str], calibration: CalibrationData,
                       out: str | os.PathLike[str], config: QuantConfig) -> Path:
    try:
        import modelopt.onnx.quantization  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("--quantizer modelopt needs NVIDIA ModelOpt: pip install 'edge-t2i[modelopt]' "
                                f"(note: it installs onnxruntime-gpu) ({exc})") from exc
    with tempfile.TemporaryDirectory() as tmpdir:
        calib_npz = Path(tmpdir) / "calib.npz"
        inputs = {"z": calibration.z, **({"embedding": calibration.embedding} if calibration.embedding.shape[1] else {})}
        np.savez(calib_npz, **inputs)  # an unconditional generator has no embedding input
        with _io.atomic_path(out) as tmp:
            proc = subprocess.run(modelopt_command(fp32_onnx, calib_npz, tmp, config), capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr or "").strip().splitlines()[-1:]
                raise ConvertError(f"ModelOpt quantization failed: {last[0] if last else f'exit {proc.returncode}'}")
            if tmp.stat().st_size == 0:
                raise ConvertError("ModelOpt quantization wrote no model")
    return Path(out)


def count_qdq(onnx_path: str | os.PathLike[str]) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes, and how many Conv, ConvTranspose and Gemm nodes read both
    their input and their weight through DequantizeLinear (i.e. run in INT8)."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    producers = {o: n for n in graph.node for o in n.output}
    counts = {"QuantizeLinear": sum(n.op_type == "QuantizeLinear" for n in graph.node),
              "DequantizeLinear": sum(n.op_type == "DequantizeLinear" for n in graph.node)}
    for op in ("Conv", "ConvTranspose", "Gemm"):
        nodes = [n for n in graph.node if n.op_type == op]
        counts[op] = len(nodes)
        counts[f"{op}_with_qdq_inputs"] = sum(
            1 for n in nodes if all(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear"
                                    for i in n.input[:2]))
    return counts


def sensitivity(fp32_onnx: str | os.PathLike[str], int8_onnx: str | os.PathLike[str],
                data: CalibrationData, candidates: Sequence[str]) -> list[tuple[str, float]]:
    """SQNR (dB) of each candidate node's output, INT8 vs FP32 on `data`: lowest first.

    Uses ONNX Runtime's qdq_loss_debug to expose intermediate tensors of both models.
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    with tempfile.TemporaryDirectory() as tmpdir:
        f_aug, q_aug = Path(tmpdir) / "f.onnx", Path(tmpdir) / "q.onnx"
        dbg.modify_model_output_intermediate_tensors(str(fp32_onnx), str(f_aug))
        dbg.modify_model_output_intermediate_tensors(str(int8_onnx), str(q_aug))
        f_act = dbg.collect_activations(str(f_aug), _Reader(data))
        q_act = dbg.collect_activations(str(q_aug), _Reader(data))
    graph = onnx.load(str(fp32_onnx), load_external_data=False).graph
    out_of = {n.name: n.output[0] for n in graph.node}
    scores = []
    for name in candidates:
        tensor = out_of.get(name)
        if tensor in f_act and tensor in q_act:
            scores.append((name, float(dbg.compute_signal_to_quantization_noice_ratio(f_act[tensor], q_act[tensor]))))
    return sorted(scores, key=lambda s: s[1])
