"""Peers that `edge-t2i bench` measures beside ours but the runtime never uses: OpenVINO.

OpenVINO (Intel's runtime for Intel CPUs) reads the pack's ONNX models unchanged: the FP32 model (on CPUs
with bf16 support its default precision hint runs it in bf16) and the Q/DQ INT8 model (its low-precision
transformations run Q/DQ Conv/Gemm as INT8). Source: OpenVINO docs, "Low Precision Transformations" and
"Precision Control" (INFERENCE_PRECISION_HINT).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_t2i.errors import BackendError, require
from edge_t2i.runtime.backends.base import Backend


class OpenVinoBackend(Backend):
    """An ONNX model compiled by OpenVINO for the CPU; the Backend interface (runtime/backends/base.py).

    `threads` 0: OpenVINO's default (all cores); `precision_hint` None: OpenVINO's default for this CPU
    (bf16 where the CPU has it), "f32" for exact FP32. Not thread-safe (one infer request).
    Raises: MissingExtraError (extra `openvino`), BackendError (OpenVINO cannot read or compile the model)."""

    name = "openvino"
    thread_safe = False

    def __init__(self, model_path: str | os.PathLike[str], precision: str = "fp32", threads: int = 0,
                 precision_hint: str | None = None):
        ov = require("openvino", "openvino", "The OpenVINO benchmark peer")
        self.precision = precision
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        try:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(Path(model_path))), "CPU", config)
            self.request = self.compiled.create_infer_request()
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise BackendError(f"OpenVINO cannot compile {model_path}: {str(exc).splitlines()[0][:300]}") from exc
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.hint = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)  # e.g. "bf16"
        self._output = self.compiled.output(0)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.request.infer(feeds)
        return {"image": np.asarray(result[self._output], dtype=np.float32)}

    def describe(self) -> str:
        return f"OpenVINO CPU ({self.precision} model, inference precision {self.hint})"
