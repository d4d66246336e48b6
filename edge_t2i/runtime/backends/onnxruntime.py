"""ONNX Runtime backend: CPU by default, CUDA provider when available and asked for."""

from __future__ import annotations

import logging
import os

import numpy as np

from edge_t2i.errors import BackendError
from edge_t2i.runtime.backends.base import Backend, model_source, register, wrap_error

log = logging.getLogger("edge_t2i.runtime")


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_threads() -> int:
    """All cores: measured on 2 cores, 2 threads halve a frame (FP32 batch 1: 4.2 -> 2.3 ms).
    A game that needs a core for itself passes threads=cores-1."""
    return os.cpu_count() or 1


# Idle intra-op threads spin 500 us, not ONNX Runtime's default (until a long backoff): as fast at batch 1 (1.80
# vs 1.79-1.89 ms a frame, shapes pack, 2 threads, Intel Xeon AMX), and another engine of the same Pipeline (OpenVINO
# for large batches) no longer competes with spinning threads (batch 16 after batch-1 frames: 13.0 vs 21.0 ms).
# Measured: docs/engines.md ("Threads"); `python benchmarks/frame_time.py PACK` compares the settings.
DEFAULT_CONFIG = {"session.intra_op.spin_duration_us": "500"}


def log_severity() -> int:
    """ONNX Runtime's log level for the runtime's sessions: 4 (fatal only; its errors reach the caller as one
    BackendError, not as extra coloured lines on stderr), 2 (warnings) with `edge-t2i --verbose`."""
    return 2 if logging.getLogger("edge_t2i").isEnabledFor(logging.DEBUG) else 4


def quiet_sessions(options):  # noqa: ANN001, ANN201 - an onnxruntime.SessionOptions
    """`options` with the runtime's log level (`log_severity`); also ONNX Runtime's default logger's."""
    import onnxruntime as ort

    options.log_severity_level = log_severity()
    ort.set_default_logger_severity(log_severity())
    return options


def session_options(threads: int = 0, profile_prefix: str | None = None,
                    config: dict[str, str] | None = None):  # noqa: ANN201
    """ONNX Runtime session options of the runtime: all graph optimizations, sequential execution, `threads`
    intra-op threads (0: all cores), `config` as SessionOptions config entries (e.g. "session.dynamic_block_base",
    "session.intra_op.allow_spinning"; benchmarks/frame_time.py measures them)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    quiet_sessions(so)
    for key, value in {**DEFAULT_CONFIG, **(config or {})}.items():
        so.add_session_config_entry(key, value)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


@register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, model: str | os.PathLike[str] | bytes, precision: str = "fp32", device: str = "cpu",
                 threads: int = 0, default_options: bool = False, profile_prefix: str | None = None,
                 config: dict[str, str] | None = None, label: str | None = None):
        """`model`: an ONNX file, or its bytes as runtime/packfile.py verified them (`label`: its file name).
        Raises: BackendError (no CUDA provider; ONNX Runtime cannot load it, with the reason)."""
        import onnxruntime as ort

        self.precision = precision
        source, self.label = model_source(model, label)
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in available_providers():
                raise BackendError("ONNX Runtime has no CUDA provider here (install onnxruntime-gpu)")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.device = device
        so = quiet_sessions(ort.SessionOptions()) if default_options else session_options(threads, profile_prefix, config)
        try:
            self.session = ort.InferenceSession(source, sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/InvalidProtobuf/... types; MemoryError
            raise wrap_error(exc, f"ONNX Runtime cannot load {self.label}") from exc
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.name = "onnxruntime-cuda" if device == "cuda" else "onnxruntime"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self._run(feeds)
        except Exception as exc:  # ORT raises its own RuntimeException/InvalidArgument/Fail types
            raise wrap_error(exc, f"ONNX Runtime failed running {self.label}") from exc

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.device == "cuda":
            binding = self.session.io_binding()
            for k, v in feeds.items():
                binding.bind_cpu_input(k, v)
            for name in self.output_names:
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            return dict(zip(self.output_names, binding.copy_outputs_to_cpu()))
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))

    def end_profiling(self) -> str:
        return str(self.session.end_profiling())

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
