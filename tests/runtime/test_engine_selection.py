"""Which TensorRT engine a pack's manifest offers this machine, and what happens when none fits.

`gpu_identity` (TensorRT version, compute capability) is patched: no GPU or TensorRT is needed. Where an
engine fits and is loaded, `tensorrt` and cuda-python are the fakes of test_tensorrt_fake.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_t2i._io import sha256_file
from edge_t2i.errors import BackendError, MissingExtraError
from edge_t2i.runtime import pipeline
from edge_t2i.runtime.backends import tensorrt as trt_backend
from edge_t2i.runtime.info import pack_info
from edge_t2i.runtime.manifest import read_manifest
from tests.runtime.test_tensorrt_fake import fake_generator, install_fakes

ENGINE = "generator.int8.trt10.3.0.sm87.plan"
BUILT_FOR = ("10.3.0", "8.7")


@pytest.fixture(scope="module")
def engine_pack(pack_dir, tmp_path_factory):
    """The tiny pack plus an INT8 engine entry built (so says the manifest) for TensorRT 10.3.0 on sm87."""
    pack = shutil.copytree(pack_dir, tmp_path_factory.mktemp("engine_pack") / "pack")
    (pack / ENGINE).write_bytes(b"FAKEPLAN for the tiny generator")
    m = json.loads((pack / "manifest.json").read_text())
    m["engines"] = [{"file": ENGINE, "precision": "int8", "source": "generator.int8.onnx",
                     "tensorrt_version": BUILT_FOR[0], "compute_capability": BUILT_FOR[1], "max_batch": 4}]
    m["files"][ENGINE] = {"sha256": sha256_file(pack / ENGINE), "bytes": (pack / ENGINE).stat().st_size}
    (pack / "manifest.json").write_text(json.dumps(m))
    return pack


def here(monkeypatch, version: str, cc: str) -> None:
    monkeypatch.setattr(trt_backend, "gpu_identity", lambda: (version, cc))


def test_matching_version_and_gpu_find_the_engine(engine_pack, monkeypatch):
    here(monkeypatch, *BUILT_FOR)
    m = read_manifest(engine_pack)
    entry, why = trt_backend.find_engine(m.engines, "int8")
    assert entry is not None and entry.file == ENGINE and entry.max_batch == 4
    assert "matches TensorRT 10.3.0 on sm8.7" in why
    entry, why = trt_backend.find_engine(m.engines, "fp16")
    assert entry is None and why == "the pack has no fp16 TensorRT engine"


@pytest.mark.parametrize("version,cc,built,now", [
    ("10.4.1", "8.7", "TensorRT 10.3.0 sm8.7", "TensorRT 10.4.1 sm8.7"),   # another TensorRT
    ("10.3.0", "9.0", "TensorRT 10.3.0 sm8.7", "TensorRT 10.3.0 sm9.0"),   # another GPU
    ("11.0.0", "12.0", "TensorRT 10.3.0 sm8.7", "TensorRT 11.0.0 sm12.0"),
])
def test_another_tensorrt_or_gpu_is_refused_with_both_named(engine_pack, monkeypatch, version, cc, built, now):
    here(monkeypatch, version, cc)
    m = read_manifest(engine_pack)
    entry, why = trt_backend.find_engine(m.engines, "int8")
    assert entry is None
    assert f"built for {built}" in why and f"this machine has {now}" in why and "rebuild" in why

    with pytest.raises(BackendError) as err:
        pipeline.select_backend(m, "tensorrt", "int8", 1)
    assert str(err.value) == f"cannot use TensorRT: {why}"

    b, choice = pipeline.select_backend(m, "auto", "int8", 1)
    with b:
        assert choice.backend == "onnxruntime" and b.name == "onnxruntime"
        assert why in choice.reason and choice.reason.split("; ")[-1].startswith("ONNX Runtime on the CPU")

    rows = [r for r in pack_info(engine_pack)["backends"] if r["backend"] == "tensorrt"]
    assert rows == [{"backend": "tensorrt", "precision": "int8", "runs": False, "why": why}]


def test_no_tensorrt_here_says_so(engine_pack, monkeypatch):
    def missing() -> tuple[str, str]:
        raise MissingExtraError("the TensorRT backend needs 'tensorrt'")

    monkeypatch.setattr(trt_backend, "gpu_identity", missing)
    m = read_manifest(engine_pack)
    assert trt_backend.find_engine(m.engines, "int8") == (None, "TensorRT unavailable (the TensorRT backend "
                                                                  "needs 'tensorrt')")
    _, choice = pipeline.select_backend(m, "auto", "int8", 1)
    assert choice.backend == "onnxruntime" and choice.reason.startswith("TensorRT unavailable")


def test_fitting_engine_is_chosen_loaded_and_reported(engine_pack, monkeypatch):
    install_fakes(monkeypatch, BUILT_FOR[0], out=(3, 32, 32))
    here(monkeypatch, *BUILT_FOR)
    m = read_manifest(engine_pack)
    b, choice = pipeline.select_backend(m, "auto", "int8", 1)
    with b:
        assert choice.backend == "tensorrt" and choice.precision == "int8" and "matches" in choice.reason
        assert b.name == "tensorrt" and b.max_batch == 4
        rng = np.random.default_rng(0)
        feeds = {"z": rng.standard_normal((2, m.nz)).astype(np.float32),
                 "embedding": rng.standard_normal((2, m.embedding_dim)).astype(np.float32)}
        np.testing.assert_array_equal(b.infer(feeds)["image"], fake_generator(feeds["z"], feeds["embedding"],
                                                                               (3, 32, 32)))
    rows = [r for r in pack_info(engine_pack)["backends"] if r["backend"] == "tensorrt"]
    assert rows == [{"backend": "tensorrt", "precision": "int8", "runs": True, "why": choice.reason}]


def test_an_altered_engine_file_is_refused_even_when_it_fits(engine_pack, monkeypatch, tmp_path):
    from edge_t2i.errors import PackError

    pack = shutil.copytree(engine_pack, tmp_path / "pack")
    (pack / ENGINE).write_bytes(b"FAKEPLAN but another one")
    here(monkeypatch, *BUILT_FOR)
    with pytest.raises(PackError, match="sha256"):
        pipeline.select_backend(read_manifest(pack), "auto", "int8", 1)
