"""Stage 6: TensorRT engines from the Q/DQ (or FP16/FP32) ONNX.

Supports TensorRT 10.x (JetPack 6; INT8/FP16 builder flags still exist) and
11.x (networks always strongly typed: precision comes from the ONNX's own Q/DQ
nodes and tensor types). Engines are plain serialized plans, named by precision,
TensorRT version and GPU compute capability; metadata lives in the manifest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_t2i import _io
from edge_t2i.errors import BackendError, ConvertError, MissingExtraError
from edge_t2i.runtime.backends.tensorrt import gpu_identity, import_tensorrt

if TYPE_CHECKING:  # type-checked against the tensorrt-stubs package in CI
    import tensorrt as trt_types

WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class EngineConfig:
    precision: str = "int8"
    max_batch: int = 16
    opt_batch: int = 1
    workspace_bytes: int = WORKSPACE_BYTES

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ConvertError(f"engine precision must be fp32, fp16 or int8, got {self.precision!r}")
        if not 1 <= self.opt_batch <= self.max_batch <= 1024:
            raise ConvertError(f"need 1 <= opt batch <= max batch <= 1024, got {self.opt_batch}, {self.max_batch}")


def engine_name(precision: str, tensorrt_version: str, compute_capability: str) -> str:
    return f"generator.{precision}.trt{tensorrt_version}.sm{compute_capability.replace('.', '')}.plan"


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def network_flags(trt: Any) -> int:
    """TensorRT 10: explicit batch is the default and the flag is deprecated; 11 removed it and
    is always strongly typed. Ask for strong typing where it exists so Q/DQ decide precision."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None or tensorrt_major(trt) >= 11 else 1 << int(flag)


def configure_precision(trt: Any, config: trt_types.IBuilderConfig, precision: str, strongly_typed: bool) -> None:
    """Only TensorRT 10 weakly-typed networks take precision flags; TensorRT 11 has none."""
    if strongly_typed:
        return
    flags = trt.BuilderFlag
    if precision in ("fp16", "int8") and hasattr(flags, "FP16"):
        config.set_flag(flags.FP16)
    if precision == "int8" and hasattr(flags, "INT8"):
        config.set_flag(flags.INT8)


def build_engine(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], dims: dict[str, int],
                 config: EngineConfig = EngineConfig(), timing_cache: str | os.PathLike[str] | None = None) -> Path:
    """Build a TensorRT engine from `onnx_path` (inputs named in `dims`: name -> feature size, a dynamic
    batch) with one optimisation profile for batch 1..max_batch (opt: opt_batch), and write the plain
    serialized plan bytes (no header) atomically to `out_dir/engine_name(...)`; returns that path.

    Follows TensorRT's explicit quantization (developer guide, "Explicit Quantization"): the Q/DQ
    nodes in the ONNX decide INT8; on TensorRT 10 weakly typed networks also get the FP16/INT8 builder
    flags, TensorRT 11 has none. `timing_cache` (a file) is read if present and updated.
    Raises: ConvertError (no TensorRT or GPU here, the parser rejects the ONNX, no engine produced)."""
    try:
        trt = import_tensorrt()
        version, cc = gpu_identity()
    except (MissingExtraError, BackendError) as exc:
        raise ConvertError(f"cannot build a TensorRT engine here: {exc}") from exc
    logger: trt_types.ILogger = trt.Logger(trt.Logger.WARNING)
    builder: trt_types.Builder = trt.Builder(logger)
    flags = network_flags(trt)
    network: trt_types.INetworkDefinition = builder.create_network(flags)
    parser: trt_types.OnnxParser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConvertError(f"TensorRT cannot parse {onnx_path}: {errors}")
    bcfg: trt_types.IBuilderConfig = builder.create_builder_config()
    bcfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_bytes)
    strongly_typed = tensorrt_major(trt) >= 11 or bool(flags)
    configure_precision(trt, bcfg, config.precision, strongly_typed)
    profile: trt_types.IOptimizationProfile = builder.create_optimization_profile()
    for name, dim in dims.items():
        profile.set_shape(name, (1, dim), (config.opt_batch, dim), (config.max_batch, dim))
    bcfg.add_optimization_profile(profile)
    cache = _load_timing_cache(bcfg, timing_cache)
    plan = builder.build_serialized_network(network, bcfg)
    if plan is None or plan.nbytes == 0:
        raise ConvertError("TensorRT produced no engine (see the TensorRT log above)")
    out = Path(out_dir) / engine_name(config.precision, version, cc)
    _io.write_bytes(out, bytes(memoryview(plan)))
    if timing_cache is not None and cache is not None:
        _io.write_bytes(timing_cache, bytes(memoryview(cache.serialize())))
    return out


def _load_timing_cache(bcfg: trt_types.IBuilderConfig, path: str | os.PathLike[str] | None) -> trt_types.ITimingCache:
    data = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = bcfg.create_timing_cache(data)
    bcfg.set_timing_cache(cache, ignore_mismatch=True)
    return cache
