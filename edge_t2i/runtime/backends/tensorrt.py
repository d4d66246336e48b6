"""TensorRT backend: a plain serialized plan, run with cuda-python (no torch, no pycuda).

Written against the TensorRT 10 and 11 Python APIs (name-based tensor I/O,
`execute_async_v3`). Host buffers are pinned; one CUDA graph is captured per
batch size after a warm-up enqueue, so a frame costs one graph launch.
This module imports nothing heavy at import time.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_t2i.errors import BackendError, MissingExtraError
from edge_t2i.runtime.backends.base import Backend, model_source, register, wrap_error
from edge_t2i.runtime.manifest import EngineEntry

log = logging.getLogger("edge_t2i.runtime")


if TYPE_CHECKING:  # type-checked against the tensorrt-stubs package in CI
    import tensorrt as trt_types


def import_tensorrt() -> Any:
    """The tensorrt module (typed as Any: callers bind it to names annotated with stub types)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingExtraError(f"the TensorRT backend needs 'tensorrt': pip install 'edge-t2i[tensorrt]' ({exc})") from exc
    if not hasattr(trt, "Runtime"):  # e.g. only tensorrt-stubs installed: a namespace package of .pyi files
        raise MissingExtraError("'tensorrt' is only type stubs here, not the library: pip install 'edge-t2i[tensorrt]'")
    return trt


def import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
        except ImportError as exc:
            raise MissingExtraError(
                f"the TensorRT backend needs 'cuda-python': pip install 'edge-t2i[tensorrt]' ({exc})") from exc
    return cudart


def check(result: Any) -> Any:
    """cuda-python calls return (error, *values): raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else (tuple(values) if values else None)


def gpu_identity() -> tuple[str, str]:
    """(TensorRT version, compute capability 'MAJOR.MINOR') of this machine; raises BackendError if none."""
    trt = import_tensorrt()
    cudart = import_cudart()
    try:
        count = check(cudart.cudaGetDeviceCount())
    except BackendError as exc:
        raise BackendError(f"no usable CUDA GPU ({exc})") from exc
    if not count:
        raise BackendError("no CUDA GPU found")
    props = check(cudart.cudaGetDeviceProperties(0))
    return str(trt.__version__), f"{props.major}.{props.minor}"


def engine_fits(entry: EngineEntry) -> tuple[bool, str]:
    """Whether a pack's engine was built for this machine's TensorRT version and GPU, and why (not)."""
    try:
        version, cc = gpu_identity()
    except (BackendError, MissingExtraError) as exc:
        return False, f"TensorRT unavailable ({exc})"
    if entry.tensorrt_version == version and entry.compute_capability == cc:
        return True, f"engine {entry.file} matches TensorRT {version} on sm{cc}"
    return False, (f"engine {entry.file} was built for TensorRT {entry.tensorrt_version} "
                   f"sm{entry.compute_capability}, this machine has TensorRT {version} sm{cc}: "
                   "rebuild with edge-t2i convert --engine on this device")


def find_engine(engines: Sequence[EngineEntry], precision: str) -> tuple[EngineEntry | None, str]:
    """The first engine of `precision` that fits this machine (`engine_fits`), or None and why none does."""
    candidates = [e for e in engines if e.precision == precision]
    if not candidates:
        return None, f"the pack has no {precision} TensorRT engine"
    reasons = []
    for entry in candidates:
        fits, why = engine_fits(entry)
        if fits:
            return entry, why
        reasons.append(why)
    return None, "; ".join(dict.fromkeys(reasons))


class _Buffers:
    """Pinned host + device buffers for one batch size, with an optional CUDA graph."""

    def __init__(self, cudart: Any, shapes: dict[str, tuple[int, ...]], batch: int):
        self.cudart = cudart
        self.batch = batch
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, int] = {}
        self.graph: Any = None       # the captured cudaGraph_t, destroyed with its instance in free()
        self.graph_exec: Any = None
        for name, shape in shapes.items():
            nbytes = int(np.prod(shape)) * 4
            ptr = check(cudart.cudaMallocHost(nbytes))
            count = int(np.prod(shape))
            self.host[name] = np.ctypeslib.as_array((ctypes.c_float * count).from_address(ptr)).reshape(shape)
            self.device[name] = check(cudart.cudaMalloc(nbytes))

    def free(self) -> None:
        if self.graph_exec is not None:
            self.cudart.cudaGraphExecDestroy(self.graph_exec)
            self.graph_exec = None
        if self.graph is not None:
            self.cudart.cudaGraphDestroy(self.graph)
            self.graph = None
        for ptr in self.device.values():
            self.cudart.cudaFree(ptr)
        for arr in self.host.values():
            self.cudart.cudaFreeHost(arr.ctypes.data)
        self.device.clear()
        self.host.clear()


@register("tensorrt")
class TensorRTBackend(Backend):
    name = "tensorrt"
    thread_safe = False  # one execution context and stream: the Generator serialises calls

    def __init__(self, engine: str | os.PathLike[str] | bytes, precision: str = "int8",
                 input_dims: dict[str, int] | None = None, output_shape: tuple[int, int, int] | None = None,
                 max_batch: int = 1, use_cuda_graph: bool = True, label: str | None = None):
        trt = import_tensorrt()
        self.cudart = import_cudart()
        self.precision = precision
        self.max_batch = max_batch
        self.input_dims = dict(input_dims or {})
        self.output_shape = output_shape
        self.use_cuda_graph = use_cuda_graph
        self._lock = threading.Lock()
        data, engine_path = model_source(engine, label)  # bytes verified by runtime/packfile.py, or a file path
        if isinstance(data, str):
            data = Path(data).read_bytes()
        if not data:
            raise BackendError(f"engine {engine_path} is empty (0 bytes): rebuild it with edge-t2i convert --engine")
        self.logger: trt_types.ILogger = trt.Logger(trt.Logger.WARNING)
        self.runtime: trt_types.Runtime = trt.Runtime(self.logger)
        try:
            deserialized: trt_types.ICudaEngine | None = self.runtime.deserialize_cuda_engine(data)
        except Exception as exc:  # TensorRT raises on some malformed plans rather than returning None
            raise wrap_error(exc, f"TensorRT cannot deserialize {engine_path}") from exc
        if deserialized is None:
            raise BackendError(f"TensorRT {trt.__version__} cannot deserialize {engine_path} "
                               "(built by another TensorRT version or for another GPU?)")
        self.engine: trt_types.ICudaEngine = deserialized
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if sorted(self.inputs) != sorted(self.input_dims) or (output_shape and self.outputs != ["image"]):
            raise BackendError(f"engine {engine_path} has inputs {self.inputs} and outputs {self.outputs}, "
                               f"the manifest declares {sorted(self.input_dims)} -> ['image']")
        context: trt_types.IExecutionContext | None = self.engine.create_execution_context()
        if context is None:
            raise BackendError(f"TensorRT cannot create an execution context for {engine_path} (out of GPU memory?)")
        self.context: trt_types.IExecutionContext = context
        self.stream = check(self.cudart.cudaStreamCreate())  # last: nothing after it can fail and leak it
        self._buffers: dict[int, _Buffers] = {}
        self._bound: int | None = None  # batch size whose buffers the context points at

    def _prepare(self, batch: int) -> _Buffers:
        buf = self._buffers.get(batch)
        if buf is not None:
            return buf
        shapes: dict[str, tuple[int, ...]] = {n: (batch, d) for n, d in self.input_dims.items()}
        shapes["image"] = (batch, *(self.output_shape or ()))
        buf = _Buffers(self.cudart, shapes, batch)
        self._bind(buf)
        self._enqueue(buf)  # warm-up enqueue before capture
        check(self.cudart.cudaStreamSynchronize(self.stream))
        if self.use_cuda_graph:
            buf.graph, buf.graph_exec = self._capture(buf)
        self._buffers[batch] = buf
        return buf

    def _bind(self, buf: _Buffers) -> None:
        """Point the execution context at `buf`: input shapes and tensor addresses of its batch size."""
        for name in self.inputs:
            self.context.set_input_shape(name, tuple(buf.host[name].shape))
        for name, ptr in buf.device.items():
            self.context.set_tensor_address(name, ptr)
        self._bound = buf.batch

    def _enqueue(self, buf: _Buffers) -> None:
        kind = self.cudart.cudaMemcpyKind
        for name in self.inputs:
            check(self.cudart.cudaMemcpyAsync(buf.device[name], buf.host[name].ctypes.data, buf.host[name].nbytes,
                                              kind.cudaMemcpyHostToDevice, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise BackendError("TensorRT execute_async_v3 failed")
        check(self.cudart.cudaMemcpyAsync(buf.host["image"].ctypes.data, buf.device["image"], buf.host["image"].nbytes,
                                          kind.cudaMemcpyDeviceToHost, self.stream))

    def _capture(self, buf: _Buffers) -> tuple[Any, Any]:
        """Record one enqueue of `buf` (its shapes and addresses) as a CUDA graph: (graph, instance)."""
        mode = self.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        check(self.cudart.cudaStreamBeginCapture(self.stream, mode))
        self._enqueue(buf)
        graph = check(self.cudart.cudaStreamEndCapture(self.stream))
        try:
            return graph, check(self.cudart.cudaGraphInstantiate(graph, 0))
        except BackendError:
            self.cudart.cudaGraphDestroy(graph)
            raise

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = int(next(iter(feeds.values())).shape[0])
        if self.max_batch is not None and batch > self.max_batch:
            raise BackendError(f"batch {batch} is larger than the engine's profile (max {self.max_batch})")
        with self._lock:
            buf = self._prepare(batch)
            for name in self.inputs:
                np.copyto(buf.host[name], feeds[name])
            if buf.graph_exec is not None:  # the graph holds its own shapes and addresses
                check(self.cudart.cudaGraphLaunch(buf.graph_exec, self.stream))
            else:
                if self._bound != batch:  # the context may still point at another batch size's buffers
                    self._bind(buf)
                self._enqueue(buf)
            check(self.cudart.cudaStreamSynchronize(self.stream))
            return {"image": buf.host["image"].copy()}

    def close(self) -> None:
        for buf in self._buffers.values():
            buf.free()
        self._buffers.clear()
        if getattr(self, "stream", None) is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None
