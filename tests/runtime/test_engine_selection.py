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
from edge_t2i.runtime import select
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


def write_reference(pack, render) -> None:
    """Give `pack` a reference set whose images are `render(feeds)` (float32 [N, 3, R, R]), sha256 recomputed."""
    from edge_t2i.imaging import to_uint8
    from edge_t2i.runtime.pipeline import load_bank
    from edge_t2i.runtime.verify import reference_feeds
    from edge_t2i.runtime.verify import write_reference as write

    m = read_manifest(pack)
    feeds = reference_feeds(m, load_bank(m).embeddings)
    digest = write(pack / "reference.safetensors", feeds, to_uint8(render(feeds)))
    raw = json.loads((pack / "manifest.json").read_text())
    raw["reference"] = "reference.safetensors"
    raw["files"]["reference.safetensors"] = {"sha256": digest, "bytes": (pack / "reference.safetensors").stat().st_size}
    (pack / "manifest.json").write_text(json.dumps(raw))


def trt_row(pack) -> dict:
    return next(r for r in pack_info(pack)["engines"] if r["candidate"] == "tensorrt-int8")


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
        select.choose(m, "tensorrt", "int8", 1)
    assert str(err.value) == f"cannot use tensorrt: {why}"

    routes, trials = select.choose(m, "auto", "int8", 1, tune=False)
    assert [r.trial.candidate.name for r in routes] == ["onnxruntime-int8"]
    assert trials[0].candidate.name == "tensorrt-int8" and trials[0].candidate.reason == why
    for r in routes:
        r.backend.close()
    row = trt_row(engine_pack)
    assert row["available"] is False and row["reason"] == why and row["check"] is None


def test_no_tensorrt_here_says_so(engine_pack, monkeypatch):
    def missing() -> tuple[str, str]:
        raise MissingExtraError("the TensorRT backend needs 'tensorrt'")

    monkeypatch.setattr(trt_backend, "gpu_identity", missing)
    m = read_manifest(engine_pack)
    assert trt_backend.find_engine(m.engines, "int8") == (None, "TensorRT unavailable (the TensorRT backend "
                                                                  "needs 'tensorrt')")
    routes, trials = select.choose(m, "auto", "int8", 1, tune=False)
    assert routes[0].trial.candidate.engine == "onnxruntime"
    assert trials[0].candidate.reason.startswith("TensorRT unavailable")
    routes[0].backend.close()


def test_a_fitting_engine_that_passes_its_device_check_is_chosen_and_reported(engine_pack, monkeypatch, tmp_path):
    install_fakes(monkeypatch, BUILT_FOR[0], out=(3, 32, 32))
    here(monkeypatch, *BUILT_FOR)
    pack = shutil.copytree(engine_pack, tmp_path / "pack")
    write_reference(pack, lambda f: fake_generator(f["z"], f["embedding"], (3, 32, 32)))  # what the fake computes
    m = read_manifest(pack)
    routes, trials = select.choose(m, "auto", "int8", 1, tune=False)
    b = routes[0].backend
    with b:
        assert routes[0].trial.candidate.name == "tensorrt-int8" and routes[0].trial.verdict.passed
        assert b.name == "tensorrt" and b.max_batch == 4
        rng = np.random.default_rng(0)
        feeds = {"z": rng.standard_normal((2, m.nz)).astype(np.float32),
                 "embedding": rng.standard_normal((2, m.embedding_dim)).astype(np.float32)}
        np.testing.assert_array_equal(b.infer(feeds)["image"], fake_generator(feeds["z"], feeds["embedding"],
                                                                               (3, 32, 32)))
    row = trt_row(pack)
    assert row["available"] and row["check"]["passed"] and "matches TensorRT 10.3.0" in row["reason"]
    # and ONNX Runtime, which does not draw what this reference shows, fails its check in the same list
    ort = next(r for r in pack_info(pack)["engines"] if r["candidate"] == "onnxruntime-int8")
    assert ort["check"]["passed"] is False and "DIFFERS" in ort["check"]["reason"]


def test_an_engine_whose_output_is_altered_is_never_chosen(engine_pack, monkeypatch, tmp_path):
    """The fake TensorRT engine fits this GPU and loads, but draws something else than the pack's FP32 model:
    the device check refuses it, `auto` takes ONNX Runtime, asking for TensorRT says why, info shows it."""
    install_fakes(monkeypatch, BUILT_FOR[0], out=(3, 32, 32))
    here(monkeypatch, *BUILT_FOR)
    m = read_manifest(engine_pack)
    routes, trials = select.choose(m, "auto", "int8", 1, tune=False)
    assert routes[0].trial.candidate.name == "onnxruntime-int8"
    routes[0].backend.close()
    trt = next(t for t in trials if t.candidate.name == "tensorrt-int8")
    assert trt.candidate.available and trt.verdict is not None and not trt.verdict.passed
    assert "DIFFERS FROM the FP32 reference" in trt.verdict.reason and trt.verdict.psnr_db < 30
    with pytest.raises(BackendError, match="no engine can run this pack here: tensorrt-int8: DIFFERS FROM"):
        select.choose(m, "tensorrt", "int8", 1)
    row = trt_row(engine_pack)
    assert row["check"]["passed"] is False and "DIFFERS" in row["check"]["reason"]


def test_an_altered_engine_file_is_refused_even_when_it_fits(engine_pack, monkeypatch, tmp_path):
    from edge_t2i.errors import PackError

    pack = shutil.copytree(engine_pack, tmp_path / "pack")
    (pack / ENGINE).write_bytes(b"FAKEPLAN but another one"[:(pack / ENGINE).stat().st_size].ljust(
        (pack / ENGINE).stat().st_size, b"!"))  # the declared size, other bytes
    here(monkeypatch, *BUILT_FOR)
    monkeypatch.setenv("EDGE_T2I_CACHE", str(tmp_path / "cache"))  # no verdict of the intact file to go by
    with pytest.raises(PackError, match="sha256"):
        select.choose(read_manifest(pack), "auto", "int8", 1, tune=False)
