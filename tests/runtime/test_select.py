"""The one place that chooses (runtime/select.py), the device check (runtime/verify.py), the tuning cache
(runtime/tuning.py) and the IO checks of the backend interface (runtime/backends/base.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edge_t2i
from edge_t2i.errors import BackendError, InputError, PackError
from edge_t2i.imaging import to_uint8
from edge_t2i.runtime import select, tuning, verify
from edge_t2i.runtime.backends.base import Backend
from edge_t2i.runtime.manifest import read_manifest
from edge_t2i.runtime.pipeline import Pipeline
from edge_t2i.runtime.select import Candidate, Chooser, Route, Trial
from tests.conftest import BANK_PROMPTS


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_T2I_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Altered(Backend):
    """Runs the real engine, then changes its image as a miscompiled kernel would."""

    def __init__(self, inner: Backend, how):
        self.inner, self.how, self.name, self.precision = inner, how, "altered", inner.precision

    def run(self, feeds):
        out = self.inner.run(feeds)
        return {"image": self.how(out["image"]).astype(np.float32)}


def test_new_packs_carry_a_reference_set_of_their_fp32_model(pack_dir):
    m = read_manifest(pack_dir)
    assert m.reference == "reference.safetensors" and m.reference in m.files
    ref = verify.load_reference(m)
    assert ref.images.shape == (verify.REFERENCE_COUNT, 32, 32, 3) and ref.source == "reference.safetensors"
    assert (ref.min_psnr_db, ref.min_ssim) == (30.0, 0.90)
    fp32 = select.create(m, next(c for c in select.candidates(m, "onnxruntime", "fp32")))
    assert verify.check_engine(fp32, ref).psnr_db == 100.0  # the same model on the same engine: identical
    fp32.close()


def test_ssim_is_the_gates_scikit_image_ssim():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    want = np.mean([metrics.structural_similarity(x, y, channel_axis=-1, data_range=255) for x, y in zip(a, b)])
    assert verify.ssim(a, b) == pytest.approx(want, abs=1e-9)
    assert verify.ssim(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("how,passes", [
    (lambda x: x, True),
    (lambda x: x + 0.004, True),                            # within the gate's thresholds
    (lambda x: np.roll(x, 3, axis=3), False),                # shifted: a wrong kernel
    (lambda x: np.full_like(x, 0.5), False),                 # a constant image
    (lambda x: x[:, ::-1], False),                           # channels swapped (BGR)
])
def test_the_device_check_refuses_an_engine_whose_output_is_altered(pack_dir, how, passes):
    m = read_manifest(pack_dir)
    ort = select.create(m, next(c for c in select.candidates(m, "onnxruntime", "fp32")))
    verdict = verify.check_engine(Altered(ort, how), verify.load_reference(m))
    assert verdict.passed is passes, verdict.reason
    assert ("matches" if passes else "DIFFERS FROM") in verdict.reason


@pytest.mark.parametrize("bad_batch", [1, 3, 16])
def test_the_device_check_renders_every_batch_size_an_engine_may_compile_on_its_own(pack_dir, bad_batch):
    """OpenVINO compiles batch 1 and 16 as static models and runs other sizes on its dynamic one: an engine whose
    image is wrong at one batch size only fails the check."""
    m = read_manifest(pack_dir)
    ort = select.create(m, next(c for c in select.candidates(m, "onnxruntime", "fp32")))
    wrong_at = Altered(ort, lambda x: np.roll(x, 3, axis=3) if len(x) == bad_batch else x)
    verdict = verify.check_engine(wrong_at, verify.load_reference(m))
    assert not verdict.passed and "DIFFERS FROM" in verdict.reason and "at batch 16, 1, 3" in verdict.reason


def test_a_reference_set_smaller_than_a_batch_still_runs_every_batch_size(pack_dir):
    """Packs may carry 1-64 reference images: a set of 5 is repeated so the batch-16 model renders too."""
    m = read_manifest(pack_dir)
    ref = verify.load_reference(m)
    small = verify.Reference({k: v[:5] for k, v in ref.feeds.items()}, ref.images[:5], ref.min_psnr_db, ref.min_ssim,
                             ref.source, ref.expected)
    ort = select.create(m, next(c for c in select.candidates(m, "onnxruntime", "fp32")))
    seen = []

    class Counting(Altered):
        def run(self, feeds):
            seen.append(len(feeds["z"]))
            return super().run(feeds)

    verdict = verify.check_engine(Counting(ort, lambda x: x), small)
    assert verdict.passed and verdict.psnr_db == 100.0, verdict.reason
    assert {16, 1, 3} <= set(seen) and "5 images" in verdict.reason

def test_openvino_compiles_each_batch_size_for_its_static_shape(pack_dir):
    """Batch 1 and 16 are compiled for their shape at construction, other sizes at their first call (much faster
    than the dynamic model: docs/engines.md), up to max_static sizes, then the dynamic model; all of them give
    the dynamic model's images."""
    pytest.importorskip("openvino")
    from edge_t2i.runtime.backends.openvino import OpenVinoBackend

    m = read_manifest(pack_dir)
    static = OpenVinoBackend(pack_dir / m.models["fp32"], threads=1, precision_hint="f32")
    assert sorted(static._requests) == [1, 16]  # compiled at construction
    dynamic = OpenVinoBackend(pack_dir / m.models["fp32"], threads=1, precision_hint="f32", max_static=0)
    capped = OpenVinoBackend(pack_dir / m.models["fp32"], threads=1, precision_hint="f32", max_static=2)
    ref = verify.load_reference(m)
    for b in (1, 3, 16):
        feeds = {k: v[:b] for k, v in ref.feeds.items()}
        np.testing.assert_allclose(static.run(feeds)["image"], dynamic.run(feeds)["image"], atol=1e-4)
        np.testing.assert_allclose(capped.run(feeds)["image"], dynamic.run(feeds)["image"], atol=1e-4)
        # pixels reads the output where OpenVINO wrote it: the same pixels as the copied output's
        np.testing.assert_array_equal(static.pixels(feeds), to_uint8(static.run(feeds)["image"]))
    shapes = {b: [list(i.get_partial_shape()) for i in r.model_inputs] for b, r in static._requests.items()}
    assert sorted(shapes) == [1, 3, 16], shapes
    assert all(str(s[0][0]) == str(b) for b, s in shapes.items())  # static: [b, nz]
    assert list(dynamic._requests) == [None]
    assert dynamic._requests[None].model_inputs[0].get_partial_shape()[0].is_dynamic
    assert sorted(capped._requests, key=str) == [1, 16, None]  # batch 3 over the budget of 2: the dynamic model
    assert "static shapes at batch 1/3/16" in static.describe()


def test_openvino_falls_back_to_the_dynamic_model_where_a_static_one_will_not_compile(pack_dir, monkeypatch):
    ov = pytest.importorskip("openvino")
    from edge_t2i.runtime.backends.openvino import OpenVinoBackend

    real = ov.Core.compile_model

    def static_fails(self, model, *args, **kwargs):
        if not model.inputs[0].get_partial_shape().is_dynamic:
            raise RuntimeError("Exception from src/inference: no kernel for this shape")
        return real(self, model, *args, **kwargs)

    monkeypatch.setattr(ov.Core, "compile_model", static_fails)
    m = read_manifest(pack_dir)
    b = OpenVinoBackend(pack_dir / m.models["fp32"], threads=1, precision_hint="f32")
    assert b._no_static == {1, 16} and list(b._requests) == [None]
    assert b.run({k: v[:1] for k, v in verify.load_reference(m).feeds.items()})["image"].shape[0] == 1
    b.close()
    with pytest.raises(BackendError, match="closed"):  # one line, not an AttributeError on None
        b.run({k: v[:1] for k, v in verify.load_reference(m).feeds.items()})


def test_openvino_runs_a_model_that_fixes_its_batch_size_as_it_is(tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edge_t2i.runtime.backends.openvino import OpenVinoBackend

    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 3, 2, 2])  # a Reshape that fixes batch 1
    graph = helper.make_graph([helper.make_node("Reshape", ["z", "shape"], ["image"])], "g",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 12])],
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 2, 2])], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    b = OpenVinoBackend(model.SerializeToString(), threads=1, static_batches=(16, 1))
    z = np.linspace(-1, 1, 12, dtype=np.float32)[None]
    np.testing.assert_array_equal(b.run({"z": z})["image"], z.reshape(1, 3, 2, 2))
    assert b._no_static == {16} and sorted(b._requests, key=str) == [1, None]


def test_an_engine_that_cannot_render_fails_its_check_instead_of_raising(pack_dir):
    class Broken(Backend):
        def run(self, feeds):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    verdict = verify.check_engine(Broken(), verify.load_reference(read_manifest(pack_dir)))
    assert not verdict.passed and "illegal memory access" in verdict.reason


def trial(name: str, rates: dict[int, float], passed: bool = True) -> Trial:
    engine, precision = name.rsplit("-", 1)
    t = Trial(Candidate(engine, precision, "x.onnx", True, "test"), rates=rates)
    t.verdict = verify.Verdict(passed, 40.0 if passed else 10.0, 0.99, "test")
    return t


def fake_chooser(pack_dir, cache) -> Chooser:
    chooser = Chooser(read_manifest(pack_dir), show=lambda _: None)

    class Fake(Backend):
        def __init__(self, name):
            self.name = name

        def run(self, feeds):
            return {"image": np.zeros((len(feeds["z"]), 3, 32, 32), np.float32)}

    chooser._backend = lambda t: chooser.open.setdefault(t.candidate.name, Fake(t.candidate.name))  # type: ignore
    return chooser


def test_the_fastest_verified_engine_wins_per_batch_size_never_a_slower_int8(pack_dir, cache):
    chooser = fake_chooser(pack_dir, cache)
    trials = [trial("onnxruntime-int8", {1: 500, 16: 600}), trial("openvino-int8", {1: 400, 16: 1300}),
              trial("onnxruntime-fp32", {1: 450, 16: 650}), trial("openvino-fp32", {1: 900, 16: 2000}, passed=False)]
    routes = chooser.routes(trials, tune=True)
    assert [(r.max_batch, r.trial.candidate.name) for r in routes] == [(select.ROUTE_SPLIT, "onnxruntime-int8"),
                                                                        (2**31, "openvino-int8")]
    # INT8 slower than FP32 here: FP32 is chosen
    trials = [trial("onnxruntime-int8", {1: 300, 16: 400}), trial("onnxruntime-fp32", {1: 450, 16: 650})]
    assert [r.trial.candidate.name for r in chooser.routes(trials, tune=True)] == ["onnxruntime-fp32"]
    with pytest.raises(BackendError, match="no engine can run this pack here: openvino-fp32: test"):
        chooser.routes([trial("openvino-fp32", {1: 900}, passed=False)], tune=True)


def test_a_pipeline_sends_each_batch_size_to_its_route(pack_dir):
    m = read_manifest(pack_dir)
    small = select.create(m, next(c for c in select.candidates(m, "onnxruntime", "int8")))
    large = select.create(m, next(c for c in select.candidates(m, "onnxruntime", "fp32")))
    seen = []
    for b in (small, large):
        b.run = (lambda run, name: lambda f: (seen.append((name, len(f["z"]))), run(f))[1])(b.run, b.precision)
    gen = Pipeline(m, [Route(4, small, trial("onnxruntime-int8", {})), Route(2**31, large, trial("onnxruntime-fp32",
                                                                                                  {}))], None)
    for n in (1, 4, 5, 16):
        gen.generate(np.tile(gen_embedding(m), (n, 1)))
    assert seen == [("int8", 1), ("int8", 4), ("fp32", 5), ("fp32", 16)]
    assert [c.precision for _, c in gen.choices] == ["int8", "fp32"]
    gen.close()


def gen_embedding(m) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal((1, m.embedding_dim)).astype(np.float32)
    return v / np.linalg.norm(v)


def test_load_measures_once_then_reads_the_cache(pack_dir, cache, monkeypatch):
    calls, timed = [], set()
    real = tuning.measure_rate
    monkeypatch.setattr(select, "measure_rate", lambda *a, **k: (calls.append(a[2]), timed.add(a[0].__name__),
                                                                 real(*a, **k))[2])
    with edge_t2i.load(pack_dir, threads=1) as g:
        first = [(b, c.backend, c.precision) for b, c in g.choices]
    assert calls and set(calls) == {1, 16} and (cache / tuning.CACHE_FILE).is_file()
    assert timed == {"pixels"}  # what generate runs: the engine, the output's checks and the uint8 conversion
    n = len(calls)
    with edge_t2i.load(pack_dir, threads=1) as g:
        assert [(b, c.backend, c.precision) for b, c in g.choices] == first
        assert all(t.cached for t in g.trials if t.candidate.available)
    assert len(calls) == n  # nothing measured the second time
    with edge_t2i.load(pack_dir, threads=2) as g:  # another thread count is another key
        pass
    assert len(calls) > n


@pytest.mark.parametrize("content", [b"{not json", b"[]", json.dumps({"format": "other", "entries": {}}).encode(),
                                     b"\xff\xfe", json.dumps({"format": tuning.CACHE_FORMAT, "entries": {
                                         "k": {"kind": "rate", "images_per_s": "fast"}}}).encode()])
def test_a_corrupt_or_foreign_cache_is_rebuilt_never_trusted(pack_dir, cache, content):
    cache.mkdir(parents=True)
    (cache / tuning.CACHE_FILE).write_bytes(content)
    assert tuning.TuneCache.open().entries == {}
    with edge_t2i.load(pack_dir, threads=1) as g:
        assert g.generate(BANK_PROMPTS[0]).shape == (1, 32, 32, 3)
    raw = json.loads((cache / tuning.CACHE_FILE).read_text())
    assert raw["format"] == tuning.CACHE_FORMAT and raw["entries"]


def test_a_cached_verdict_of_another_library_version_is_not_used(pack_dir, cache, monkeypatch):
    m = read_manifest(pack_dir)
    k = tuning.key(tuning.pack_digest(m), "onnxruntime", "int8", "check", 1)
    monkeypatch.setattr(tuning, "library_version", lambda engine: "onnxruntime 0.0.1")
    assert tuning.key(tuning.pack_digest(m), "onnxruntime", "int8", "check", 1) != k


def test_cache_off_writes_nothing(pack_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_T2I_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with edge_t2i.load(pack_dir, threads=1) as g:
        g.generate(BANK_PROMPTS[0])
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()


class Wrong(Backend):
    def __init__(self, image):
        self.image, self.name = image, "wrong"

    def run(self, feeds):
        return {"image": self.image}


@pytest.mark.parametrize("image,error,match", [
    (np.zeros((1, 3, 8, 8), np.float32), PackError, r"returned float32 \[1, 3, 8, 8\], the manifest declares"),
    (np.zeros((1, 3, 32, 32), np.float64), PackError, "returned float64"),
    (np.zeros((2, 3, 32, 32), np.float32), PackError, r"\[2, 3, 32, 32\]"),
    (np.full((1, 3, 32, 32), np.nan, np.float32), BackendError, "NaN/inf"),
])
def test_outputs_are_checked_against_the_manifest_on_every_call(pack_dir, image, error, match):
    m = read_manifest(pack_dir)
    gen = Pipeline.single(m, Wrong(image), "test", None)
    with pytest.raises(error, match=match):
        gen.generate(gen_embedding(m))


def test_feeds_are_checked_before_the_engine_runs(pack_dir):
    m = read_manifest(pack_dir)
    b = Wrong(np.zeros((1, 3, 32, 32), np.float32))
    b.io = select.io_spec(m)
    z = np.zeros((1, m.nz), np.float32)
    for feeds, match in (({"z": z}, "inputs"), ({"z": z, "embedding": np.zeros((1, 5), np.float32)}, "embedding"),
                         ({"z": z, "embedding": np.zeros((2, m.embedding_dim), np.float32)}, "one batch size"),
                         ({"z": z.astype(np.float64), "embedding": np.zeros((1, m.embedding_dim), np.float32)},
                          "float32")):
        with pytest.raises(InputError, match=match):
            b.infer(feeds)


def test_keep_warm_runs_a_frame_only_when_the_program_is_idle(pack_dir):
    import time

    gen = edge_t2i.load(pack_dir, backend="onnxruntime", precision="fp32", threads=1)
    calls = []
    run = gen.backend.run
    gen.backend.run = lambda f: (calls.append(len(f["z"])), run(f))[1]
    gen.keep_warm(0.05)
    time.sleep(0.4)
    idle = len(calls)
    assert idle >= 3 and set(calls) == {1}
    with pytest.raises(InputError, match="keep_warm interval"):
        gen.keep_warm(0)
    gen.close()  # stops the thread
    time.sleep(0.15)
    assert len(calls) == idle or len(calls) == idle + 1


def test_named_engines_and_precisions_are_checked(pack_dir):
    with pytest.raises(BackendError, match="did you mean 'openvino'"):
        edge_t2i.load(pack_dir, backend="openvin")
    with pytest.raises(BackendError, match="did you mean 'fp32'"):
        edge_t2i.load(pack_dir, precision="fp33")


def test_a_winner_that_will_not_load_gives_way_and_routes_respect_engine_limits(pack_dir, cache):
    chooser = fake_chooser(pack_dir, cache)
    fake = chooser._backend

    def flaky(t):
        if t.candidate.name == "openvino-int8":  # the batch-16 winner: out of memory here
            t.error = "OpenVINO cannot compile generator.int8.onnx for GPU: out of memory"
            return None
        b = fake(t)
        b.max_batch = 2 if t.candidate.name == "tensorrt-int8" else None
        return b

    chooser._backend = flaky
    trials = [trial("tensorrt-int8", {1: 900, 16: 0}), trial("openvino-int8", {1: 400, 16: 1300}),
              trial("onnxruntime-fp32", {1: 450, 16: 650})]
    routes = chooser.routes(trials, tune=True)
    assert [(r.max_batch, r.trial.candidate.name) for r in routes] == [(2, "tensorrt-int8"),
                                                                        (2**31, "onnxruntime-fp32")]
    assert "out of memory" in trials[1].error
    gen = Pipeline(read_manifest(pack_dir), routes, None)
    assert gen.max_batch == 256  # the last route has no limit: batches above 2 go there


def test_bf16_is_held_to_the_int8_models_figures(pack_dir):
    ref = verify.load_reference(read_manifest(pack_dir))
    assert ref.thresholds("bf16") == ref.thresholds("int8")
    psnr, sim = ref.expected["int8"]
    assert ref.thresholds("int8") == (max(30.0, min(psnr, 50.0) - 6.0), max(0.90, sim - 0.02))
    assert ref.thresholds("fp32") == (44.0, 0.98)
    assert ref.thresholds("fp16") == (30.0, 0.90)  # no fp16 model measured: the gate's own thresholds


def test_keep_warm_refuses_a_bad_interval_without_stopping_the_running_thread(pack_dir):
    gen = edge_t2i.load(pack_dir, backend="onnxruntime", precision="fp32", threads=1)
    gen.keep_warm(0.05)
    thread = gen._warm[0]
    with pytest.raises(InputError):
        gen.keep_warm(-1)
    assert gen._warm is not None and gen._warm[0] is thread and thread.is_alive()
    gen.close()
    assert gen._warm is None and not thread.is_alive()


def test_tune_prints_every_candidate_and_the_choice(pack_dir, cache, capsys):
    from edge_t2i.cli import main

    assert main(["tune", str(pack_dir), "--threads", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {e["candidate"] for e in out["engines"]}
    assert {"onnxruntime-int8", "onnxruntime-fp32"} <= names
    timed = [e for e in out["engines"] if e["images_per_s"]]
    assert all(set(e["images_per_s"]) == {"1", "16"} for e in timed) and len(timed) >= 2
    assert out["chosen"] and set(out["chosen"]) <= {e["candidate"] for e in timed}
    assert main(["tune", str(pack_dir), "--precision", "int9"]) == 2
    assert "did you mean 'int8'" in capsys.readouterr().err


def test_a_closed_pipeline_says_so(pack_dir):
    gen = edge_t2i.load(pack_dir, backend="onnxruntime", precision="fp32", threads=1)
    assert gen.choices[-1][0] == gen.max_batch == 256  # a batch size, not a sentinel
    gen.close()
    with pytest.raises(BackendError, match="closed"):
        gen.generate(BANK_PROMPTS[0])
    with pytest.raises(BackendError, match="closed"):
        gen.keep_warm(1.0)


def test_bf16_errors_name_the_real_reason(pack_dir):
    with pytest.raises(BackendError, match="not on onnxruntime"):
        edge_t2i.load(pack_dir, backend="onnxruntime", precision="bf16")
    with pytest.raises(BackendError, match="did you mean 'openvino'"):
        edge_t2i.load(pack_dir, backend="OpenVIN")
    assert edge_t2i.load(pack_dir, backend="ONNXRuntime", precision="FP32", threads=1).choice.precision == "fp32"


def test_a_named_engine_still_gets_its_fastest_precision(pack_dir, cache, monkeypatch):
    def rates(self, trial, batches, force=False, cached_only=False):
        trial.rates = {1: 100.0, 16: 100.0} if trial.candidate.precision == "int8" else {1: 300.0, 16: 300.0}

    monkeypatch.setattr(Chooser, "measure", rates)
    with edge_t2i.load(pack_dir, backend="onnxruntime", threads=1) as gen:
        assert [c.precision for _, c in gen.choices] == ["fp32"]  # INT8 measured slower: FP32


def test_a_bf16_candidate_that_openvino_keeps_in_f32_is_not_offered_as_bf16(pack_dir, monkeypatch):
    """OpenVINO may keep every layer of a model in f32 under a bf16 hint (a DCGAN's Deconvolutions): the
    candidate is then openvino-fp32 under another name, and says so."""
    manifest = read_manifest(pack_dir)
    closed = []

    class KeptInF32:
        hint = "f32"

        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(select.backends, "create", lambda *a, **k: KeptInF32())
    cand = Candidate("openvino", "bf16", manifest.models["fp32"], True, "test")
    with pytest.raises(BackendError, match="runs no layer of this model in bf16 here: it is openvino-fp32"):
        select.create(manifest, cand)
    assert closed


def test_openvino_reports_the_precision_its_layers_run_in(tmp_path):
    """A model of one ConvTranspose: OpenVINO's CPU plugin keeps Deconvolution in f32 even where its default is bf16,
    so the backend reports f32 (on a CPU without bf16, f32 is the default anyway)."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from edge_t2i.runtime.backends.openvino import OpenVinoBackend

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3, 4, 4)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("ConvTranspose", ["x", "w"], ["image"], strides=[2, 2])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 10, 10])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    b = OpenVinoBackend(model.SerializeToString(), threads=1)
    assert b.hint == "f32" and not b._runs_in("bf16") and "inference precision f32" in b.describe()


def test_a_model_openvino_runs_in_bf16_reports_bf16(pack_dir):
    pytest.importorskip("openvino")
    from edge_t2i.runtime.backends.openvino import OpenVinoBackend, cpu_default_precision

    if cpu_default_precision() != "bf16":
        pytest.skip("this CPU computes f32 by default (no native bf16)")
    b = OpenVinoBackend(pack_dir / read_manifest(pack_dir).models["fp32"], threads=1)  # the CPU's default: bf16
    assert b.hint == "bf16" and b._runs_in("bf16")
