"""TensorRT engine build + run vs ONNX Runtime. Needs tensorrt, cuda-python and a CUDA GPU."""

import numpy as np
import pytest

from edge_t2i.errors import BackendError, MissingExtraError


def _gpu_or_skip() -> tuple[str, str]:
    try:
        from edge_t2i.runtime.backends.tensorrt import gpu_identity

        return gpu_identity()
    except (BackendError, MissingExtraError) as exc:
        pytest.skip(f"no TensorRT GPU here: {exc}")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_engine_builds_runs_and_matches_onnxruntime(pack_dir, tmp_path, precision):
    version, cc = _gpu_or_skip()
    from edge_t2i.convert.engine import EngineConfig, build_engine, engine_name
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from edge_t2i.runtime.backends.tensorrt import TensorRTBackend

    src = pack_dir / f"generator.{precision}.onnx"
    path = build_engine(src, tmp_path, {"z": 100, "embedding": 384}, EngineConfig(precision, max_batch=4))
    assert path.name == engine_name(precision, version, cc) and path.stat().st_size > 0
    feeds = {"z": np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32),
             "embedding": np.random.default_rng(1).standard_normal((3, 384)).astype(np.float32)}
    ref = OnnxRuntimeBackend(src).infer(feeds)["image"]
    with TensorRTBackend(path, precision, {"z": 100, "embedding": 384}, (3, 32, 32), max_batch=4) as trt:
        out = trt.infer(feeds)["image"]
        again = trt.infer(feeds)["image"]  # the CUDA graph replay gives the same result
        with pytest.raises(BackendError, match="larger than the engine's profile"):
            trt.infer({k: np.repeat(v, 2, axis=0) for k, v in feeds.items()})
    assert np.array_equal(out, again)
    assert np.abs(out - ref).max() < (0.1 if precision == "int8" else 1e-2)
