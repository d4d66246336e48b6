"""Each engine's GEMM peaks: the denominators of utilization (achieved MAC/s over the peak of the engine
and precision the model runs in), since engines reach different instructions on the same CPU.

ONNX Runtime's own kernels (MLAS): FP32 with MatMul, INT8 with MatMulInteger (uint8 x int8 -> int32, the
kernel QLinearConv/QGemm use on x86: VNNI where the CPU has it). OpenVINO (oneDNN): FP32 with MatMul at
INFERENCE_PRECISION_HINT f32, INT8 with a Q/DQ MatMul, which its low-precision transformations run as an
INT8 GEMM (AMX-INT8 where the CPU has it). Each is the best of several square sizes and repeats at the
benchmark's thread count. A peak is a best case: a model whose measured rate exceeds it raises it (see
bench/runner.py `utilization`).
"""

from __future__ import annotations

import time

import numpy as np

from edge_t2i.errors import MissingExtraError, require

SIZES = (256, 512, 1024)


def _session(precision: str, size: int, threads: int):  # noqa: ANN202
    import onnxruntime as ort

    onnx = require("onnx", "convert", "The GEMM peak probe")
    from onnx import TensorProto, helper

    if precision == "int8":
        a = helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size])
        b = helper.make_tensor_value_info("b", TensorProto.INT8, [size, size])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [size, size])
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    else:
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
        b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
    model = helper.make_model(helper.make_graph([node], "gemm", [a, b], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by ONNX Runtime 1.17+
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _best_rate(run, macs: int, seconds: float) -> float:  # noqa: ANN001
    run()  # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        run()
        best = max(best, macs / (time.perf_counter() - t0) / 1e9)
    return best


def gemm_peak_gmacs(precision: str = "fp32", threads: int = 0, seconds: float = 1.5) -> float:
    """Best GEMM rate of this machine in GMAC/s for `precision` ("fp32" or "int8"), with `threads`
    ONNX Runtime threads (0: all cores), spending about `seconds` in total.
    Raises: ValueError (unknown precision), MissingExtraError (no `onnx` to build the probe models:
    extra `convert`)."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    rng = np.random.default_rng(0)
    best = 0.0
    per = seconds / len(SIZES)
    for size in SIZES:
        if precision == "int8":
            feeds = {"a": rng.integers(0, 256, (size, size), dtype=np.uint8),
                     "b": rng.integers(-128, 128, (size, size), dtype=np.int8)}
        else:
            feeds = {k: rng.standard_normal((size, size), dtype=np.float32) for k in ("a", "b")}
        sess = _session(precision, size, threads)
        best = max(best, _best_rate(lambda s=sess, f=feeds: s.run(None, f), size**3, per))
    return best


def _qdq_matmul(size: int, precision: str) -> bytes:
    """An ONNX MatMul [size, size] x [size, size]: float, or with Q/DQ on both operands (INT8)."""
    onnx = require("onnx", "convert", "The GEMM peak probe")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    if precision == "int8":
        inits = [numpy_helper.from_array(rng.integers(-127, 128, (size, size), dtype=np.int8), "bq"),
                 numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                 numpy_helper.from_array(np.array(128, np.uint8), "za"),
                 numpy_helper.from_array(np.array(0, np.int8), "zb")]
        nodes = [helper.make_node("QuantizeLinear", ["a", "s", "za"], ["aq"]),
                 helper.make_node("DequantizeLinear", ["aq", "s", "za"], ["ad"]),
                 helper.make_node("DequantizeLinear", ["bq", "s", "zb"], ["bd"]),
                 helper.make_node("MatMul", ["ad", "bd"], ["y"])]
    else:
        inits = [numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "b")]
        nodes = [helper.make_node("MatMul", ["a", "b"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "gemm", [a], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def openvino_peak_gmacs(precision: str = "fp32", threads: int = 0, seconds: float = 1.5) -> float:
    """Best GEMM rate of OpenVINO on this CPU in GMAC/s (see the module docstring); "bf16" is the float MatMul
    at INFERENCE_PRECISION_HINT bf16. Raises: ValueError (unknown precision), MissingExtraError (no `openvino`
    or `onnx`)."""
    if precision not in ("fp32", "bf16", "int8"):
        raise ValueError(f"precision must be fp32, bf16 or int8, got {precision!r}")
    ov = require("openvino", "openvino", "The OpenVINO GEMM peak probe")
    core = ov.Core()
    config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY",
                                 "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    best = 0.0
    for size in SIZES:
        model = core.read_model(_qdq_matmul(size, "int8" if precision == "int8" else "fp32"), b"")
        request = core.compile_model(model, "CPU", config).create_infer_request()
        feeds = {"a": np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)}
        best = max(best, _best_rate(lambda r=request, f=feeds: r.infer(f), size**3, seconds / len(SIZES)))
    return best


def engine_peaks(threads: int = 0) -> dict[str, dict[str, float]]:
    """{"onnxruntime": {"fp32", "int8"}, "openvino": {"fp32", "int8"(, "bf16" on a bf16 CPU)} where installed}
    in GMAC/s. Raises: MissingExtraError (no `onnx` to build the probe models: extra `convert`)."""
    peaks = {"onnxruntime": {p: round(gemm_peak_gmacs(p, threads), 2) for p in ("fp32", "int8")}}
    try:
        from edge_t2i.runtime.backends.openvino import cpu_has_bf16

        precisions = ("fp32", "int8", "bf16") if cpu_has_bf16() else ("fp32", "int8")
        peaks["openvino"] = {p: round(openvino_peak_gmacs(p, threads), 2) for p in precisions}
    except MissingExtraError as exc:
        if "openvino" not in str(exc):
            raise
    return peaks
