"""The quality gate's arithmetic and decision, on known inputs: PSNR, thresholds, per-attribute drops."""

import math
import re

import numpy as np
import pytest

from edge_t2i.convert import gate
from edge_t2i.convert.paired import paired_drop
from edge_t2i.data.vocab import ATTRIBUTES
from edge_t2i.errors import ConvertError
from edge_t2i.eval import oracle


def img(value: int, n: int = 2) -> np.ndarray:
    return np.full((n, 4, 4, 3), value, np.uint8)


# ---- PSNR ----------------------------------------------------------------------------------
def test_psnr_of_known_arrays():
    assert gate.psnr(img(100), img(110)) == pytest.approx(10 * math.log10(255**2 / 100))   # mse 100
    assert gate.psnr(img(100), img(101)) == pytest.approx(10 * math.log10(255**2))         # mse 1: 48.13 dB
    assert gate.psnr(img(0), img(255)) == pytest.approx(0.0)                               # no uint8 wrap-around
    assert gate.psnr(img(200), img(190)) == gate.psnr(img(190), img(200))
    a, b = img(50), img(50)
    b[0, 0, 0, 0] = 70  # one channel of one pixel of 96 off by 20: mse 400/96
    assert gate.psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 96 / 400))


def test_psnr_of_identical_images_is_infinite():
    assert gate.psnr(img(7), img(7)) == math.inf


# ---- configuration and evaluation set -------------------------------------------------------
def test_config_needs_a_seed_per_prompt_and_sane_thresholds():
    assert gate.GateConfig(seeds_per_prompt=1).seeds_per_prompt == 1
    with pytest.raises(ConvertError, match="at least one seed"):
        gate.GateConfig(seeds_per_prompt=0)
    assert gate.GateConfig(min_psnr_db=0, max_all_drop=0, max_attribute_drop=0.0).max_all_drop == 0
    for name in ("min_psnr_db", "max_all_drop", "max_attribute_drop"):
        for bad in (-0.01, math.nan, math.inf, "0.02", None):
            with pytest.raises(ConvertError, match=f"gate {name} must be a finite number >= 0, got"):
                gate.GateConfig(**{name: bad})


def test_eval_set_repeats_each_prompt_with_fresh_seeds_after_the_offset():
    emb = np.arange(6, dtype=np.float32).reshape(3, 2)
    es = gate.EvalSet.build(["a", "b", "c"], emb, gate.GateConfig())  # defaults: 16 seeds per prompt from 10000
    assert es.prompts == ["a"] * 16 + ["b"] * 16 + ["c"] * 16
    assert es.seeds == list(range(10_000, 10_048))
    assert np.array_equal(es.embeddings, emb[[0] * 16 + [1] * 16 + [2] * 16])
    assert es.rows == [{"text": p} for p in es.prompts]
    three = gate.EvalSet.build(["a", "b"], emb[:2], gate.GateConfig(seeds_per_prompt=3, seed_offset=5))
    assert three.seeds == [5, 6, 7, 8, 9, 10] and three.prompts == ["a"] * 3 + ["b"] * 3


def test_eval_set_rows_are_what_the_oracle_scores():
    es = gate.EvalSet.build(["a large red circle in the center"], np.zeros((1, 2), np.float32),
                            gate.GateConfig(seeds_per_prompt=1))
    assert oracle.expected_attributes(es.rows[0]) == {"color": "red", "shape": "circle", "size": "large",
                                                      "position": "center", "background": None}


def test_render_runs_each_prompt_seed_pair_through_onnxruntime(tmp_path):
    """A linear 'generator' (image = tanh([z, embedding] @ W)) makes the expected images easy to compute."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from edge_t2i.imaging import to_uint8
    from edge_t2i.runtime.noise import noise

    nz, dim = 5, 3
    w = np.random.default_rng(0).standard_normal((nz + dim, 3 * 2 * 2)).astype(np.float32) * 0.3
    nodes = [helper.make_node("Concat", ["z", "embedding"], ["x"], axis=1),
             helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Tanh", ["y"], ["t"]),
             helper.make_node("Reshape", ["t", "shape"], ["image"])]
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", nz]),
                          helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 2, 2])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 3, 2, 2], np.int64), "shape")])
    path = tmp_path / "linear.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    emb = np.random.default_rng(1).standard_normal((2, dim)).astype(np.float32)
    es = gate.EvalSet.build(["p", "q"], emb, gate.GateConfig(seeds_per_prompt=2))
    out = gate.render(path, es, nz, batch=3)  # batches of 3 over 4 rows: the split must not matter
    expected = to_uint8(np.tanh(np.concatenate([noise(es.seeds, nz), es.embeddings], 1) @ w).reshape(-1, 3, 2, 2))
    assert out.shape == (4, 2, 2, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(out, gate.render(path, es, nz))


# ---- the decision ---------------------------------------------------------------------------
KEYS = ("all", *ATTRIBUTES)


def verdicts(n: int = 200, lost: dict | None = None, gained: dict | None = None, unnamed: tuple = ()) -> tuple:
    """Per-image verdicts (1 right, 0 wrong, -1 not named) for FP32 and INT8: everything right under FP32
    except the `gained` ones, INT8 losing `lost[key]` images and gaining `gained[key]`."""
    v32 = {k: np.ones(n, np.int8) for k in (*KEYS, "background")}
    v8 = {k: np.ones(n, np.int8) for k in (*KEYS, "background")}
    for key, count in (lost or {}).items():
        v8[key][:count] = 0
    for key, count in (gained or {}).items():
        v32[key][n - count:] = 0
    for key in unnamed:
        v32[key][:] = -1
        v8[key][:] = -1
    return v32, v8


def judge(monkeypatch, v32: dict, v8: dict, config: gate.GateConfig,
          fp32: np.ndarray | None = None, int8: np.ndarray | None = None) -> gate.GateResult:
    """gate.judge with the oracle's per-image verdicts replaced: FP32 images get v32, INT8 images v8."""
    n = len(v32["all"])
    fp32 = img(100, n) if fp32 is None else fp32
    int8 = fp32.copy() if int8 is None else int8
    es = gate.EvalSet(["p"] * n, np.zeros((n, 2), np.float32), list(range(n)), [{"text": f"p{i}"} for i in range(n)])
    seen = []

    def fake(images, rows):
        seen.append(rows)
        return v32 if images is fp32 else v8

    monkeypatch.setattr(oracle, "image_verdicts", fake)
    result = gate.judge(fp32, int8, es, config)
    assert seen == [es.rows, es.rows]
    return result


def test_result_records_psnr_accuracies_and_paired_drops(monkeypatch):
    v32, v8 = verdicts(200, lost={"all": 9, "color": 3}, gained={"all": 1})
    wide = gate.GateConfig(min_psnr_db=0, max_all_drop=0.5, max_attribute_drop=0.5)
    r = judge(monkeypatch, v32, v8, wide, img(100, 200), img(110, 200))
    assert r.psnr_db == 28.131  # 10 log10(255^2 / 100) = 28.1308..., to 3 decimals
    d_all = paired_drop(v32["all"] == 1, v8["all"] == 1)
    assert (d_all.lost, d_all.gained, d_all.n) == (9, 1, 200)
    assert r.all_drop == round(d_all.drop, 4) == 0.04 and r.count == 200
    assert r.drops == {k: paired_drop(v32[k] == 1, v8[k] == 1).as_dict() for k in KEYS}
    assert r.fp32 == {k: r.drops[k]["fp32"] for k in KEYS} and r.int8 == {k: r.drops[k]["int8"] for k in KEYS}
    assert r.fp32["all"] == 199 / 200 and r.int8["all"] == 191 / 200 and r.int8["color"] == 197 / 200
    assert r.passed and r.reason.startswith("PSNR 28.1 dB >= 0 dB; 'all' drop +4.0% (95% CI ")
    assert r.reason.endswith(") <= 50%; each attribute's <= 50%")
    assert r.as_dict()["drops"] == r.drops and r.as_dict()["psnr_db"] == 28.131


def test_rounding_of_the_recorded_figures(monkeypatch):
    v32, v8 = verdicts(3, lost={"all": 1})
    r = judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=0, max_all_drop=1.0))
    assert r.all_drop == 0.3333 and r.psnr_db == math.inf


def test_attributes_the_captions_do_not_name_are_not_scored(monkeypatch):
    v32, v8 = verdicts(100, lost={"color": 1}, unnamed=("size", "position"))
    v32["color"][50:] = -1  # half the captions name no colour: the drop is over the other half
    v8["color"][50:] = -1
    r = judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=0, max_attribute_drop=1.0))
    assert set(r.drops) == {"all", "color", "shape"}
    assert r.drops["color"]["n"] == 50 and r.drops["color"]["drop"] == 1 / 50 and r.drops["shape"]["n"] == 100


def test_default_thresholds(monkeypatch):
    """30 dB; upper 95% bounds of 2 points for 'all four right' and 3 points for each attribute."""
    ok = gate.GateConfig()
    v32, v8 = verdicts(2048)
    assert judge(monkeypatch, v32, v8, ok, img(100, 2048), img(108, 2048)).passed         # mse 64: 30.07 dB
    low = judge(monkeypatch, v32, v8, ok, img(100, 2048), img(109, 2048))                 # mse 81: 29.05 dB
    assert not low.passed and low.reason == "PSNR 29.0 dB < 30 dB"
    # a loss whose upper bound lies between the two margins: fails as 'all', passes as an attribute
    lost = next(k for k in range(2048) if paired_drop(np.ones(2048, bool), np.arange(2048) >= k).upper > 0.02)
    assert paired_drop(np.ones(2048, bool), np.arange(2048) >= lost).upper < 0.03
    v32, v8 = verdicts(2048, lost={"all": lost})
    assert not judge(monkeypatch, v32, v8, ok).passed
    v32, v8 = verdicts(2048, lost={"all": lost - 1})
    assert judge(monkeypatch, v32, v8, ok).passed
    v32, v8 = verdicts(2048, lost={"shape": lost})
    assert judge(monkeypatch, v32, v8, ok).passed


def test_psnr_exactly_at_the_minimum_passes(monkeypatch):
    a, b = img(100), img(113)
    v32, v8 = verdicts(2)
    wide = {"max_all_drop": 1.0, "max_attribute_drop": 1.0}
    assert judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=gate.psnr(a, b), **wide), a, b).passed
    above = judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=gate.psnr(a, b) + 1e-6, **wide), a, b)
    assert not above.passed and above.reason == "PSNR 25.9 dB < 25.8519 dB"


@pytest.mark.parametrize("key", KEYS)
def test_each_check_passes_exactly_at_its_margin(monkeypatch, key):
    v32, v8 = verdicts(500, lost={key: 12}, gained={key: 2})
    upper = paired_drop(v32[key] == 1, v8[key] == 1).upper
    margins = {"max_all_drop": upper} if key == "all" else {"max_attribute_drop": upper}
    others = {"max_attribute_drop": 1.0} if key == "all" else {"max_all_drop": 1.0}
    at = judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=0, **others, **margins))
    assert at.passed, at.reason
    below = {k: v - 1e-9 for k, v in margins.items()}
    fails = judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=0, **others, **below))
    assert not fails.passed
    assert fails.reason.startswith(f"'{key}' dropped +2.0% (95% CI ") and (
        f"the upper end must be <= {below[next(iter(below))]:.0%})") in fails.reason
    # the drop is inside the margin, its interval is not: the reason says the sample is too small
    assert "only 500 paired images: too few" in fails.reason


def test_every_failed_check_is_named(monkeypatch):
    v32, v8 = verdicts(100, lost={"all": 50, "color": 50, "size": 25})
    r = judge(monkeypatch, v32, v8, gate.GateConfig(min_psnr_db=40, max_all_drop=0.0, max_attribute_drop=0.0),
              img(0, 100), img(10, 100))
    assert not r.passed
    assert r.reason.startswith("PSNR 28.1 dB < 40 dB; 'all' dropped +50.0% (95% CI +")
    assert re.findall(r"'(\w+)' dropped", r.reason) == ["all", "color", "shape", "size", "position"]
    assert "; 'color' dropped +50.0% (95% CI +" in r.reason and "; 'shape' dropped +0.0% (95% CI -" in r.reason
    assert "; 'size' dropped +25.0%" in r.reason and r.reason.count("the upper end must be <= 0%)") == 5


def test_judge_with_the_real_oracle_on_shapes(monkeypatch):
    """Unpatched: identical images pass with infinite PSNR; the oracle scores what the captions say."""
    from edge_t2i.data.shapes import iter_samples

    samples = list(iter_samples(12, seed=5, split="test", resolution=64))
    images = np.stack([s.image for s in samples])
    es = gate.EvalSet([s.text for s in samples], np.zeros((12, 2), np.float32), list(range(12)),
                      [{"text": s.text} for s in samples])
    wide = gate.GateConfig(max_all_drop=0.5, max_attribute_drop=0.5)  # 12 images: a wide interval even at no loss
    r = gate.judge(images, images.copy(), es, wide)
    assert r.passed and r.psnr_db == math.inf and r.all_drop == 0 and r.count == 12
    assert not gate.judge(images, images.copy(), es, gate.GateConfig()).passed  # too few images to show <= 2 points
    assert r.fp32 == r.int8 and r.fp32["all"] >= 0.9
    blank = np.full_like(images, 128)
    worse = gate.judge(images, blank, es, gate.GateConfig(min_psnr_db=0, max_all_drop=0.5, max_attribute_drop=0.5))
    assert not worse.passed and worse.int8["all"] == 0.0 and worse.all_drop == round(r.fp32["all"], 4)
