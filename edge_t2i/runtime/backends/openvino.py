"""OpenVINO backend (extra `openvino`): the pack's ONNX models compiled for an Intel CPU, GPU or NPU.

OpenVINO reads the ONNX files unchanged: its low-precision transformations run the Q/DQ INT8 model's
Conv/ConvTranspose/MatMul in INT8 (on CPUs with AMX-INT8 through oneDNN's AMX kernels, with VNNI through
VNNI), and it compiles the FP32 model in the precision `precision_hint` names. On CPUs with bf16 its
default hint runs FP32 models in bf16; this backend runs FP32 packs at "f32" unless asked, so FP32 means
FP32 (the device check in runtime/verify.py checks every engine against the pack's reference images).
Configuration follows OpenVINO's latency guide: PERFORMANCE_HINT LATENCY, one stream, threads pinned on
the CPU, compiled models cached (CACHE_DIR). The pack's models take any batch size (a dynamic first
dimension); OpenVINO runs a model compiled for one static shape much faster than a dynamic one (DF-GAN 64 px
on a 2-core AMX Xeon: 1.7x at batch 1, 2x at batch 16, docs/engines.md), so each batch size gets a model reshaped to that batch and
compiled for it: the sizes `load` measures and routes (1 and 16) at construction, any other on its first
call (up to MAX_STATIC sizes; beyond them, and where a graph fixes its own batch size, the dynamic model). Sources: OpenVINO docs, "Low Precision Transformations", "Precision Control",
"Optimizing for Latency", "Model Caching Overview", "Dynamic Shapes" ("static shapes ... better performance";
`Model.reshape`).
"""

from __future__ import annotations

import os

import numpy as np

from edge_t2i.errors import BackendError, MissingExtraError
from edge_t2i.imaging import to_uint8
from edge_t2i.runtime import cache
from edge_t2i.runtime.backends.base import TUNE_BATCHES, Backend, model_source, register, wrap_error

MAX_STATIC = 8  # batch sizes one backend compiles statically (each compiled model holds its own buffers)


def reshaped(model, batch: int):  # noqa: ANN001, ANN201 - openvino Models
    """A copy of the OpenVINO `model` with every input's first (batch) dimension fixed to `batch`.
    Raises OpenVINO's own errors where the graph cannot take that batch size."""
    static = model.clone()
    static.reshape({i.get_any_name(): [batch, *list(i.get_partial_shape())[1:]] for i in static.inputs})
    return static


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
    cache folder; `static_batches`: batch sizes compiled for their own static shape at construction; other
    sizes are compiled for theirs on their first call (a stall of 0.1-1 s: `Pipeline.warm_up` does it
    ahead) while fewer than `max_static` are compiled, else run the dynamic model (`max_static` 0: only the
    dynamic model). Not thread-safe
    (one infer request per compiled model: the Pipeline serialises calls). Raises: MissingExtraError (extra
    `openvino`), BackendError (OpenVINO cannot read, compile or run it; closed)."""

    name = "openvino"
    thread_safe = False

    def __init__(self, model: str | os.PathLike[str] | bytes, precision: str = "fp32", device: str = "CPU",
                 threads: int = 0, precision_hint: str | None = None, pin: bool = True, cache_key: str = "",
                 label: str | None = None, static_batches: tuple[int, ...] = TUNE_BATCHES,
                 max_static: int = MAX_STATIC):
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
        self._config = config
        self.max_static = max_static
        self.static_batches = tuple(static_batches)[:max_static]
        self._no_static: set[int] = set()  # batch sizes OpenVINO could not compile statically
        self._requests: dict[int | None, object] = {}  # batch size (None: the dynamic model) -> its infer request
        # OpenVINO keys its compiled-model cache by path, size and time: a folder per model sha256 (`cache_key`)
        # means a compiled blob is only ever reused for the bytes the pack verified; without one, no cache.
        cache_dir = cache.ensure(f"openvino/{cache_key[:32]}") if cache_key else None
        try:
            self._core = ov.Core()
            if cache_dir is not None:
                self._core.set_property({"CACHE_DIR": str(cache_dir)})
            # from memory: read_model parses the verified bytes (an ONNX model with external data is refused by
            # OpenVINO, and before that by runtime/packfile.py); the cache is then keyed by the model's content
            self._model = self._core.read_model(source)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise wrap_error(exc, f"OpenVINO cannot read {self.label}") from exc
        for batch in self.static_batches or (None,):  # all now: a first batch-16 frame must not wait for a compile
            self._request(batch)
        try:
            hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        except Exception as exc:  # a device or version that does not report it
            raise wrap_error(exc, f"OpenVINO compiled {self.label} for {device} but cannot say its precision") from exc
        self.hint = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)  # e.g. "bf16"
        if self.hint == "bf16" and not self._runs_in("bf16"):
            self.hint = "f32"  # the hint allows bf16, but OpenVINO kept every layer of this model in f32
        self.name = "openvino" if device == "CPU" else f"openvino-{device.lower()}"

    def _request(self, batch: int | None):  # noqa: ANN202 - an openvino InferRequest
        """The infer request of the model compiled for `batch` (static) or for any batch (None), compiled on first
        use. A batch size over the `max_static` budget, or one the model cannot be reshaped or compiled for (a
        graph that fixes its batch size), runs on the dynamic model. Raises BackendError (closed, or no model
        compiles)."""
        if self._model is None:
            raise BackendError(f"{self.label}: this OpenVINO backend is closed")
        request = self._requests.get(batch)
        if request is not None:
            return request
        static = sum(k is not None for k in self._requests)
        key = batch if batch is not None and batch not in self._no_static and static < self.max_static else None
        if key is None and None in self._requests:
            return self._requests[None]
        try:
            model = self._model if key is None else reshaped(self._model, key)
            compiled = self._core.compile_model(model, self.device, self._config)
            request = compiled.create_infer_request()
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            if key is not None:
                self._no_static.add(key)
                return self._request(None)
            raise wrap_error(exc, f"OpenVINO cannot compile {self.label} for {self.device}") from exc
        if not self._requests:
            self.compiled = compiled  # the first one: its precision and runtime model describe the backend
        self._requests[key] = request
        return request

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"image": np.array(self._infer(feeds), dtype=np.float32, copy=True)}

    def pixels(self, feeds: dict[str, np.ndarray], bgr: bool = False) -> np.ndarray:
        """As Backend.pixels, reading the output where OpenVINO wrote it (no float copy: one pass fewer)."""
        image = np.asarray(self._infer(feeds), dtype=np.float32)  # a view where it is float32 already
        if self.io is not None:
            self.io.check_outputs({"image": image}, len(feeds["z"]), self.describe())
        return to_uint8(image, bgr)

    def _infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The output image float32 [B, C, R, R] in the request's own memory, valid until its next infer (callers
        hold the Pipeline's lock); inputs shared, not copied."""
        try:
            request = self._request(len(next(iter(feeds.values()))))
            request.infer(feeds, share_inputs=True)
            return request.get_output_tensor(0).data
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
        static = "/".join(str(b) for b in sorted(k for k in self._requests if k is not None))
        return (f"OpenVINO {self.device} ({self.precision} model, inference precision {self.hint}"
                f"{f', static shapes at batch {static}' if static else ''})")

    def close(self) -> None:
        self._requests = {}
        self.compiled = self._model = self._core = None
