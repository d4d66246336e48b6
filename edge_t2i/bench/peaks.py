"""The machine's GEMM peaks: the denominators of utilization (achieved MAC/s over the peak of the
precision the model runs in).

Both peaks are measured with ONNX Runtime's own kernels (MLAS) at the benchmark's thread count: FP32 with
MatMul, INT8 with MatMulInteger (uint8 x int8 -> int32, the kernel QLinearConv/QGemm use on x86), each the
best of several square sizes and repeats.
A peak is a best case: a model whose measured rate exceeds it raises it (see `utilization`).
"""

from __future__ import annotations

import time

import numpy as np

from edge_t2i.errors import require

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
