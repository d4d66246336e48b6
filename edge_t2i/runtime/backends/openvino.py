"""OpenVINO backend (extra `openvino`): the pack's ONNX models compiled for an Intel CPU, GPU or NPU.

OpenVINO reads the ONNX files unchanged: its low-precision transformations run the Q/DQ INT8 model's
Conv/ConvTranspose/MatMul in INT8 (on CPUs with AMX-INT8 through oneDNN's AMX kernels, with VNNI through
VNNI), and it compiles the FP32 model in the precision `precision_hint` names. On CPUs with bf16 its
default hint runs FP32 models in bf16; this backend runs FP32 packs at "f32" unless asked, so FP32 means
FP32 (the device check in runtime/verify.py checks every engine against the pack's reference images).
Configuration follows OpenVINO's latency guide: PERFORMANCE_HINT LATENCY, one stream, threads pinned on
the CPU, compiled models cached (CACHE_DIR). Sources: OpenVINO docs, "Low Precision Transformations",
"Precision Control", "Optimizing for Latency", "Model Caching Overview".
"""

from __future__ import annotations

import os

import numpy as np

from edge_t2i.errors import BackendError, MissingExtraError
from edge_t2i.runtime import cache
from edge_t2i.runtime.backends.base import Backend, model_source, register, wrap_error


def import_openvino():  # noqa: ANN201 - returns the module
    try:
        import openvino as ov
    except ImportError as exc:
        raise MissingExtraError(f"the OpenVINO backend needs 'openvino': pip install 'edge-t2i[openvino]' ({exc})") \
            from exc
    return ov


def available_devices() -> list[str]:
    """OpenVINO's devices here (e.g. ["CPU", "GPU", "NPU"]); [] without OpenVINO or if it cannot list them."""
    try:
        ov = import_openvino()
        return [str(d) for d in ov.Core().available_devices]
    except (MissingExtraError, RuntimeError):
        return []


def cpu_has_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (its OPTIMIZATION_CAPABILITIES list BF16)."""
    try:
        ov = import_openvino()
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except (MissingExtraError, RuntimeError):
        return False


def cpu_default_precision() -> str:
    """OpenVINO's default inference precision on this CPU ("bf16" where it has native bf16, else "f32")."""
    try:
        hint = import_openvino().Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
        return hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    except (MissingExtraError, RuntimeError):
        return "f32"


@register("openvino")
class OpenVinoBackend(Backend):
    """An ONNX model compiled by OpenVINO on `device` ("CPU", "GPU", "NPU").

    `threads` 0: all cores; `precision_hint`: "f32", "bf16" or "f16" (OpenVINO's INFERENCE_PRECISION_HINT),
    None: OpenVINO's default for the device (the INT8 model's float parts in bf16 on AMX CPUs); `pin` pins
    the CPU threads; `cache_key` (the model's sha256) turns on OpenVINO's compiled-model cache in the user's
    cache folder. Not thread-safe (one infer request: the Pipeline serialises calls).
    Raises: MissingExtraError (extra `openvino`), BackendError (OpenVINO cannot read, compile or run it)."""

    name = "openvino"
    thread_safe = False

    def __init__(self, model: str | os.PathLike[str] | bytes, precision: str = "fp32", device: str = "CPU",
                 threads: int = 0, precision_hint: str | None = None, pin: bool = True, cache_key: str = "",
                 label: str | None = None):
        ov = import_openvino()
        self.precision = precision
        self.device = device
        source, self.label = model_source(model, label)
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if device == "CPU":
            config["ENABLE_CPU_PINNING"] = pin
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        # OpenVINO keys its compiled-model cache by path, size and time: a folder per model sha256 (`cache_key`)
        # means a compiled blob is only ever reused for the bytes the pack verified; without one, no cache.
        cache_dir = cache.ensure(f"openvino/{cache_key[:32]}") if cache_key else None
        try:
            core = ov.Core()
            if cache_dir is not None:
                core.set_property({"CACHE_DIR": str(cache_dir)})
            # from memory: read_model parses the verified bytes (an ONNX model with external data is refused by
            # OpenVINO, and before that by runtime/packfile.py); the cache is then keyed by the model's content
            self.compiled = core.compile_model(core.read_model(source) if isinstance(source, bytes) else source,
                                               device, config)
            self.request = self.compiled.create_infer_request()
            hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise wrap_error(exc, f"OpenVINO cannot compile {self.label} for {device}") from exc
        self.hint = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)  # e.g. "bf16"
        if self.hint == "bf16" and not self._runs_in("bf16"):
            self.hint = "f32"  # the hint allows bf16, but OpenVINO kept every layer of this model in f32
        self._output = self.compiled.output(0)
        self.name = "openvino" if device == "CPU" else f"openvino-{device.lower()}"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:  # inputs shared, not copied; the output read from the request's tensor and copied once
            self.request.infer(feeds, share_inputs=True)
            return {"image": np.array(self.request.get_output_tensor(0).data, dtype=np.float32, copy=True)}
        except Exception as exc:
            if isinstance(exc, BackendError):
                raise
            raise wrap_error(exc, f"OpenVINO failed running {self.label}") from exc

    def _runs_in(self, precision: str) -> bool:
        """Whether some layer of the compiled model runs in `precision` (its runtime model's runtimePrecision;
        True where OpenVINO does not say). OpenVINO's CPU plugin may keep a model wholly in f32 under a bf16
        hint: a DCGAN's Deconvolution layers stay f32."""
        try:
            found = [op.get_rt_info()["runtimePrecision"].astype(str)
                     for op in self.compiled.get_runtime_model().get_ordered_ops()
                     if "runtimePrecision" in op.get_rt_info()]
        except Exception:  # noqa: BLE001 - a device or version that does not report it
            return True
        return not found or precision in found

    def describe(self) -> str:
        return f"OpenVINO {self.device} ({self.precision} model, inference precision {self.hint})"

    def close(self) -> None:
        self.request = None
        self.compiled = None
