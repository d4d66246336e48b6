"""TensorRTBackend on fakes of `tensorrt` and cuda-python's runtime (cudart): no GPU, no TensorRT.

The fakes follow the TensorRT 10/11 Python API as documented (deserialize_cuda_engine, num_io_tensors,
get_tensor_name, get_tensor_mode, set_input_shape, set_tensor_address, execute_async_v3) and cudart's
(error, value) tuples. Fake device memory is a dict from fake pointers to numpy byte arrays; the fake
execution context computes "image" from whatever its tensor addresses point at, for the shape last
set with set_input_shape, so a context left bound to another batch size's buffers gives wrong images.
Stream capture records operations into a graph that cudaGraphLaunch replays. Nothing here is a
TensorRT result.
"""

from __future__ import annotations

import ctypes
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from edge_t2i.errors import BackendError

NZ, DIM, OUT = 8, 6, (3, 4, 4)
INPUT_DIMS = {"z": NZ, "embedding": DIM}


def fake_generator(z: np.ndarray, emb: np.ndarray, out: tuple[int, int, int] = OUT) -> np.ndarray:
    """What the fake engine computes: image[b, c, h, w] = tanh(z[b, c] + emb[b, c] * (h + 1) - w / 4)."""
    c, h, w = out
    zz, ee = z[:, :c, None, None], emb[:, :c, None, None]
    hh, ww = np.arange(h)[None, None, :, None], np.arange(w)[None, None, None, :]
    return np.tanh(zz + ee * (hh + 1) - ww / 4.0).astype(np.float32)


class FakeCudart:
    """cuda.bindings.runtime: (err, value) tuples, device memory in a dict, stream capture into graphs."""

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStreamCaptureMode:
        cudaStreamCaptureModeGlobal = 0

    def __init__(self) -> None:
        self.device: dict[int, np.ndarray] = {}   # live device allocations
        self.host: dict[int, np.ndarray] = {}     # live pinned host allocations (address -> backing array)
        self.keep_alive: list[np.ndarray] = []    # freed host memory stays valid: no crash on a stray view
        self.freed_device: list[int] = []
        self.freed_host: list[int] = []
        self.streams: set[int] = set()
        self.graphs: dict[int, list] = {}          # cudaGraph_t -> recorded operations
        self.execs: dict[int, list] = {}           # cudaGraphExec_t -> operations
        self.destroyed_graphs: list[int] = []
        self.destroyed_execs: list[int] = []
        self.capturing: dict[int, list] = {}       # stream -> operations recorded so far
        self.captures = 0
        self.launches: list[int] = []
        self._next = 0x10_0000

    def _handle(self) -> int:
        self._next += 0x1000
        return self._next

    # memory
    def cudaMalloc(self, nbytes):
        ptr = self._handle()
        self.device[ptr] = np.zeros(nbytes, np.uint8)
        return 0, ptr

    def cudaFree(self, ptr):
        self.device.pop(ptr)
        self.freed_device.append(ptr)
        return (0,)

    def cudaMallocHost(self, nbytes):
        backing = np.zeros(nbytes, np.uint8)
        self.host[backing.ctypes.data] = backing
        self.keep_alive.append(backing)
        return 0, backing.ctypes.data

    def cudaFreeHost(self, ptr):
        self.host.pop(ptr)
        self.freed_host.append(ptr)
        return (0,)

    def host_bytes(self, address: int, nbytes: int) -> np.ndarray:
        assert any(a <= address and address + nbytes <= a + b.nbytes for a, b in self.host.items()), \
            "copy from/to host memory that is not live pinned memory"
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(address))

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        def op() -> None:
            if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice:
                self.device[dst][:nbytes] = self.host_bytes(src, nbytes)
            else:
                self.host_bytes(dst, nbytes)[:] = self.device[src][:nbytes]
        self.submit(stream, op)
        return (0,)

    # streams and graphs
    def submit(self, stream: int, op) -> None:  # noqa: ANN001
        assert stream in self.streams
        if stream in self.capturing:
            self.capturing[stream].append(op)   # recorded, not run (stream capture)
        else:
            op()                                # the fake runs work at once: synchronize is a no-op

    def cudaStreamCreate(self):
        s = self._handle()
        self.streams.add(s)
        return 0, s

    def cudaStreamDestroy(self, stream):
        self.streams.remove(stream)
        return (0,)

    def cudaStreamSynchronize(self, stream):
        assert stream not in self.capturing, "synchronize during capture is illegal"
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        assert stream not in self.capturing
        self.capturing[stream] = []
        self.captures += 1
        return (0,)

    def cudaStreamEndCapture(self, stream):
        g = self._handle()
        self.graphs[g] = self.capturing.pop(stream)
        return 0, g

    def cudaGraphInstantiate(self, graph, flags):
        e = self._handle()
        self.execs[e] = list(self.graphs[graph])
        return 0, e

    def cudaGraphLaunch(self, graph_exec, stream):
        self.launches.append(graph_exec)
        for op in self.execs[graph_exec]:
            self.submit(stream, op)
        return (0,)

    def cudaGraphExecDestroy(self, graph_exec):
        self.execs.pop(graph_exec)
        self.destroyed_execs.append(graph_exec)
        return (0,)

    def cudaGraphDestroy(self, graph):
        self.graphs.pop(graph)
        self.destroyed_graphs.append(graph)
        return (0,)

    def cudaGetDeviceCount(self):
        return 0, 1

    def cudaGetDeviceProperties(self, device):
        return 0, SimpleNamespace(major=8, minor=7)


class FakeContext:
    """IExecutionContext: shapes and addresses as set; execute_async_v3 computes image from them."""

    def __init__(self, cudart: FakeCudart, names: list[str], out: tuple[int, int, int]):
        self.cudart = cudart
        self.names = names
        self.out = out
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.calls: list[tuple] = []      # ("shape", name, shape) / ("address", name, ptr) / ("execute", batch)

    def set_input_shape(self, name, shape):
        assert name in self.names[:2]
        self.shapes[name] = tuple(shape)
        self.calls.append(("shape", name, tuple(shape)))
        return True

    def set_tensor_address(self, name, ptr):
        assert name in self.names
        self.addresses[name] = ptr
        self.calls.append(("address", name, ptr))
        return True

    def execute_async_v3(self, stream):
        # Shapes and addresses are read when the work is enqueued (a captured graph keeps them).
        shapes, addresses = dict(self.shapes), dict(self.addresses)
        batch = shapes["z"][0]
        assert shapes["embedding"][0] == batch
        self.calls.append(("execute", batch))
        mem = self.cudart.device

        def run() -> None:
            def read(name: str, dim: int) -> np.ndarray:  # the first batch rows at the bound address
                raw = mem[addresses[name]]
                assert raw.nbytes >= batch * dim * 4, f"{name}: shape {shapes[name]} overruns its buffer"
                return raw[:batch * dim * 4].view(np.float32).reshape(batch, dim)
            image = fake_generator(read("z", shapes["z"][1]), read("embedding", shapes["embedding"][1]), self.out)
            out = mem[addresses["image"]]
            assert out.nbytes >= image.nbytes, "image overruns its buffer"
            out[:image.nbytes] = image.reshape(-1).view(np.uint8)
        self.cudart.submit(stream, run)
        return True


def make_fake_tensorrt(version: str, cudart: FakeCudart, out: tuple[int, int, int] = OUT) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    names = ["z", "embedding", "image"]

    class Logger:
        WARNING = 2

        def __init__(self, level=WARNING):
            self.level = level

    class TensorIOMode:
        INPUT = "INPUT"
        OUTPUT = "OUTPUT"

    class Engine:
        num_io_tensors = len(names)

        def __init__(self):
            self.contexts: list[FakeContext] = []

        def get_tensor_name(self, i):
            return names[i]

        def get_tensor_mode(self, name):
            return TensorIOMode.OUTPUT if name == "image" else TensorIOMode.INPUT

        def create_execution_context(self):
            ctx = FakeContext(cudart, names, out)
            self.contexts.append(ctx)
            trt.contexts.append(ctx)
            return ctx

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            return Engine() if bytes(data).startswith(b"FAKEPLAN") else None

    trt.Logger, trt.TensorIOMode, trt.Runtime = Logger, TensorIOMode, Runtime
    trt.contexts = []
    return trt


def install_fakes(monkeypatch: pytest.MonkeyPatch, version: str = "10.3.0",
                  out: tuple[int, int, int] = OUT) -> tuple[types.ModuleType, FakeCudart]:
    """Make `import tensorrt` and `from cuda.bindings import runtime` give the fakes (undone after the test);
    the fake engine's image is `fake_generator(z, embedding, out)`."""
    cudart = FakeCudart()
    trt = make_fake_tensorrt(version, cudart, out)
    runtime = types.ModuleType("cuda.bindings.runtime")
    for name in dir(cudart):
        if name.startswith("cuda"):
            setattr(runtime, name, getattr(cudart, name))
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, runtime
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    return trt, cudart


@pytest.fixture
def fakes(monkeypatch):
    return install_fakes(monkeypatch)


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "generator.int8.trt10.3.0.sm87.plan"
    path.write_bytes(b"FAKEPLAN 1")
    return path


def feeds_for(batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"z": rng.standard_normal((batch, NZ)).astype(np.float32),
            "embedding": rng.standard_normal((batch, DIM)).astype(np.float32)}


def backend(plan, use_cuda_graph: bool):  # noqa: ANN001, ANN201
    from edge_t2i.runtime.backends.tensorrt import TensorRTBackend

    return TensorRTBackend(plan, "int8", INPUT_DIMS, OUT, max_batch=4, use_cuda_graph=use_cuda_graph)


def test_fakes_stand_in_for_the_libraries(fakes):
    from edge_t2i.runtime.backends.tensorrt import gpu_identity, import_cudart, import_tensorrt

    trt, cudart = fakes
    assert import_tensorrt() is trt
    assert import_cudart().cudaMalloc == cudart.cudaMalloc  # cuda.bindings.runtime is tried first
    assert gpu_identity() == ("10.3.0", "8.7")


def test_without_cuda_graphs_alternating_batch_sizes_rebind_the_context(fakes, plan):
    """Batch 1, 4, 1, 4, 1: each output is computed from its own input. Before the fix the context stayed
    bound to batch 4's buffers when batch 1 came back, and batch 1 returned a stale image."""
    trt, cudart = fakes
    rng = np.random.default_rng(0)
    with backend(plan, use_cuda_graph=False) as b:
        for batch in (1, 4, 1, 4, 1):
            feeds = feeds_for(batch, rng)
            out = b.infer(feeds)["image"]
            assert out.shape == (batch, *OUT)
            np.testing.assert_array_equal(out, fake_generator(feeds["z"], feeds["embedding"]))
            ctx = trt.contexts[0]
            assert ctx.shapes == {"z": (batch, NZ), "embedding": (batch, DIM)}
            assert ctx.addresses == b._buffers[batch].device
        assert cudart.captures == 0 and not cudart.launches  # no graph on this path
        executes = [c for c in ctx.calls if c[0] == "execute"]
        assert [c[1] for c in executes] == [1, 1, 4, 4, 1, 4, 1]  # warm-up + run for each new batch size


def test_cuda_graph_path_captures_once_per_batch_size_then_launches(fakes, plan):
    trt, cudart = fakes
    rng = np.random.default_rng(1)
    sizes = (1, 4, 1, 4, 2, 1)
    with backend(plan, use_cuda_graph=True) as b:
        for batch in sizes:
            feeds = feeds_for(batch, rng)
            np.testing.assert_array_equal(b.infer(feeds)["image"], fake_generator(feeds["z"], feeds["embedding"]))
        assert cudart.captures == 3 and len(cudart.graphs) == 3 and len(cudart.execs) == 3
        # every request is one graph launch of its own batch size's graph
        assert cudart.launches == [b._buffers[n].graph_exec for n in sizes]
        # the context ran directly only for warm-ups (one per batch size); each graph recorded one enqueue
        direct = [c[1] for c in trt.contexts[0].calls if c[0] == "execute"]
        assert direct == [1, 1, 4, 4, 2, 2]  # warm-up, then the enqueue recorded by the capture


def test_close_frees_every_buffer_graph_and_the_stream(fakes, plan):
    _, cudart = fakes
    rng = np.random.default_rng(2)
    b = backend(plan, use_cuda_graph=True)
    for batch in (1, 3, 4):
        b.infer(feeds_for(batch, rng))
    allocated_device, allocated_host = set(cudart.device), set(cudart.host)
    assert len(allocated_device) == len(allocated_host) == 3 * 3  # z, embedding, image per batch size
    b.close()
    assert not cudart.device and not cudart.host and not cudart.streams
    assert set(cudart.freed_device) == allocated_device and set(cudart.freed_host) == allocated_host
    assert not cudart.execs and len(cudart.destroyed_execs) == 3
    assert not cudart.graphs and len(cudart.destroyed_graphs) == 3
    b.close()  # a second close is harmless


def test_batch_over_the_profile_and_bad_plans_are_refused(fakes, plan, tmp_path):
    from edge_t2i.runtime.backends.tensorrt import TensorRTBackend

    _, cudart = fakes
    with backend(plan, use_cuda_graph=False) as b:
        with pytest.raises(BackendError, match="larger than the engine's profile"):
            b.infer(feeds_for(5, np.random.default_rng(3)))
    empty = tmp_path / "empty.plan"
    empty.write_bytes(b"")
    with pytest.raises(BackendError, match="empty"):
        TensorRTBackend(empty, "int8", INPUT_DIMS, OUT)
    other = tmp_path / "other.plan"
    other.write_bytes(b"not a plan for this TensorRT")
    with pytest.raises(BackendError, match="cannot deserialize"):
        TensorRTBackend(other, "int8", INPUT_DIMS, OUT)
    with pytest.raises(BackendError, match="has inputs"):
        TensorRTBackend(plan, "int8", {"z": NZ, "text": DIM}, OUT)
    assert not cudart.streams and not cudart.device  # a refused engine leaves no CUDA stream or memory behind


def test_tensorrt_exceptions_become_backend_errors(fakes, plan, monkeypatch):
    """TensorRT raises (rather than returning None) on some malformed plans: one BackendError, not its traceback;
    from bytes as the runtime passes them (verified by runtime/packfile.py), named by the pack file."""
    from edge_t2i.runtime.backends.tensorrt import TensorRTBackend

    trt, cudart = fakes

    def raising(self, data):
        raise RuntimeError("[TRT] [E] 1: [runtime.cpp::parsePlan::314] Error Code 1: Serialization failed")
    monkeypatch.setattr(trt.Runtime, "deserialize_cuda_engine", raising)
    with pytest.raises(BackendError, match="TensorRT cannot deserialize g.plan: .* Serialization failed"):
        TensorRTBackend(plan.read_bytes(), "int8", INPUT_DIMS, OUT, label="g.plan")
    assert not cudart.streams and not cudart.device
