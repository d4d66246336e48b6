"""Benchmark arithmetic on known inputs, and a short real run."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_t2i.bench.macs import node_macs, onnx_macs_per_image
from edge_t2i.bench.stats import percentiles_ms


def test_percentiles_on_known_latencies():
    lat = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    p = percentiles_ms(lat)
    assert p["p50_ms"] == pytest.approx(50.5)
    assert p["p90_ms"] == pytest.approx(90.1)
    assert p["p99_ms"] == pytest.approx(99.01)
    assert p["max_ms"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        percentiles_ms([])


def test_node_macs_formulas():
    # Conv 3x3, 8 -> 16 channels, 32x32 output: 16*32*32 outputs x 8*3*3 MACs
    assert node_macs("Conv", [[1, 8, 32, 32], [16, 8, 3, 3]], [[1, 16, 32, 32]], {}) == 16 * 32 * 32 * 72
    # grouped conv: weight [C_out, C_in/group, k, k]
    assert node_macs("Conv", [[1, 8, 4, 4], [8, 1, 3, 3]], [[1, 8, 4, 4]], {"group": 8}) == 8 * 16 * 9
    assert node_macs("Gemm", [[1, 100], [2048, 100]], [[1, 2048]], {"transB": 1}) == 100 * 2048
    assert node_macs("MatMul", [[1, 7, 384], [384, 64]], [[1, 7, 64]], {}) == 7 * 64 * 384
    assert node_macs("Relu", [[1, 8]], [[1, 8]], {}) == 0


def test_onnx_mac_count_of_a_small_graph(tmp_path):
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    g = numpy_helper.from_array(np.zeros((10, 4 * 8 * 8), np.float32), "g")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "shape"], ["r"]),
             helper.make_node("Gemm", ["r", "g"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [w, g, shape])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert onnx_macs_per_image(path) == 4 * 8 * 8 * 27 + 256 * 10


def test_onnx_count_matches_torch_hooks_on_the_generator(pack_dir, checkpoint_dir):
    """An independent count: forward hooks on every Conv2d / Linear of the torch model."""
    import torch

    from edge_t2i.models.checkpoint import load_generator

    model = load_generator(checkpoint_dir)
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            total += output[0].numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            total += module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    model(torch.zeros(1, 100), torch.zeros(1, 384))
    assert onnx_macs_per_image(pack_dir / "generator.fp32.onnx") == total


@pytest.mark.slow
def test_short_bench_run_writes_json_and_plot(pack_dir, checkpoint_dir, tmp_path):
    pytest.importorskip("openvino")
    from edge_t2i.cli import main

    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    rc = main(["bench", str(pack_dir), "--checkpoint", str(checkpoint_dir),
               "--backends", "auto,auto-int8,auto-fp32,onnxruntime-int8,openvino-fp32,raw,torch,tensorrt-int8",
               "--batch", "1,2", "--seconds", "0.5", "--warmup", "1", "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    result = json.loads(out_json.read_text())
    rows = result["rows"]
    files = ("generator.fp32.onnx", "generator.int8.onnx", "generator.int8.u8s8.onnx")
    raw = {f"raw-{e}:{f}" for e in ("onnxruntime", "openvino") for f in files}
    static = {f"raw-openvino-static:{f}" for f in files}  # OpenVINO called with the model reshaped to the batch
    configs = {"auto", "auto-int8", "auto-fp32", "onnxruntime-int8", "openvino-fp32", "torch", *raw, *static}
    assert {(r["config"], r["batch"]) for r in rows} == {(c, b) for c in configs for b in (1, 2)}
    assert all(0 < r["utilization"] <= 1 and 0 < r["machine_utilization"] <= r["utilization"] for r in rows)
    for engine in ("onnxruntime", "openvino"):
        assert result["peak_gmacs"][engine]["int8"] > 0 and result["peak_gmacs"][engine]["fp32"] > 0
    by = {(r["config"], r["batch"]): r["images_per_s"] for r in rows}
    for v in result["verdict"]:  # auto against the fastest raw engine of the same batch size, default and static
        best = max(raw, key=lambda c, b=v["batch"]: by[c, b])
        assert v["best_raw_config"] == best and v["ratio"] == round(by["auto", v["batch"]] / by[best, v["batch"]], 3)
        top = max(static, key=lambda c, b=v["batch"]: by[c, b])
        assert v["best_static_config"] == top
        assert v["ratio_static"] == round(by["auto", v["batch"]] / by[top, v["batch"]], 3)
    assert [r["batch"] for r in result["int8_vs_fp32"]] == [1, 2]
    for r in rows:
        assert {"backend", "precision", "batch", "images_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"} <= set(r)
        assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["images_per_s"] > 0
    for r in rows:  # each row's speed-up is its images/s over torch's at the same batch size
        ref = next(t for t in rows if t["config"] == "torch" and t["batch"] == r["batch"])
        assert r["vs_torch"] == round(r["images_per_s"] / ref["images_per_s"], 2), r
    auto_fp32 = [r for r in rows if r["config"] == "auto-fp32"]
    assert {r["precision"] for r in auto_fp32} == {"fp32"}
    assert any(s["config"] == "tensorrt-int8" for s in result["skipped"])
    assert out_png.stat().st_size > 1000


def test_utilization_uses_the_peak_of_the_rows_engine_and_precision_and_never_exceeds_one():
    from edge_t2i.bench.runner import ratios, utilization

    rows = [{"config": "onnxruntime-fp32", "backend": "onnxruntime", "precision": "fp32", "batch": 1, "gmacs": 50.0,
             "images_per_s": 100.0},
            {"config": "auto", "backend": "onnxruntime", "precision": "int8", "batch": 1, "gmacs": 80.0,
             "images_per_s": 160.0},
            {"config": "openvino-fp32", "backend": "openvino", "precision": "fp32", "batch": 1, "gmacs": 120.0,
             "images_per_s": 240.0},
            {"config": "openvino-int8", "backend": "openvino", "precision": "int8", "batch": 1, "gmacs": 300.0,
             "images_per_s": 600.0},
            {"config": "tensorrt-int8", "backend": "tensorrt", "precision": "int8", "batch": 1, "gmacs": 900.0,
             "images_per_s": 1800.0}]
    peaks = {"onnxruntime": {"fp32": 100.0, "int8": 400.0}, "openvino": {"fp32": 100.0, "int8": 1000.0}}
    utilization(rows, peaks)
    assert [r["utilization"] for r in rows] == [0.5, 0.2, 1.0, 0.3, None]  # openvino beat its own FP32 peak
    assert [r["machine_utilization"] for r in rows] == [round(50 / 120, 4), 0.08, 1.0, 0.3, None]
    assert peaks["openvino"]["fp32"] == 120.0 and peaks["openvino"]["raised_by"] == ["openvino-fp32 batch 1"]
    assert peaks["onnxruntime"] == {"fp32": 100.0, "int8": 400.0}
    assert ratios(rows) == [{"batch": 1, "config": "auto", "vs": {"onnxruntime-fp32": 1.6, "openvino-fp32": 0.667,
                                                                  "openvino-int8": 0.267, "tensorrt-int8": 0.089}}]


def test_openvino_peer_runs_the_pack_models_like_onnx_runtime(pack_dir):
    pytest.importorskip("openvino")
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from edge_t2i.runtime.backends.openvino import OpenVinoBackend

    rng = np.random.default_rng(0)
    feeds = {"z": rng.standard_normal((3, 100), dtype=np.float32),
             "embedding": rng.standard_normal((3, 384), dtype=np.float32) * 0.05}
    with OnnxRuntimeBackend(pack_dir / "generator.fp32.onnx", threads=1) as ort_b:
        ref = ort_b.infer(feeds)["image"]
    ov = OpenVinoBackend(pack_dir / "generator.fp32.onnx", threads=1, precision_hint="f32")
    assert ov.infer(feeds)["image"].shape == ref.shape
    assert np.abs(ov.infer(feeds)["image"] - ref).max() < 1e-4
    ov8 = OpenVinoBackend(pack_dir / "generator.int8.onnx", "int8", threads=1)
    assert np.abs(ov8.infer(feeds)["image"] - ref).mean() < 0.1  # INT8, possibly bf16 inside: close, not equal
    assert "OpenVINO CPU (int8 model" in ov8.describe()
    assert ov.hint == "f32"


def test_synthetic_bench_measures_fp32_and_int8_of_random_generators(tmp_path, capsys):
    from edge_t2i.cli import main

    out_json, out_png = tmp_path / "s.json", tmp_path / "s.png"
    assert main(["bench", "--synthetic", "32", "--ngf", "4", "--batch", "1", "--seconds", "0.1",
                 "--threads", "1", "--json", str(out_json), "--plot", str(out_png)]) == 0
    result = json.loads(out_json.read_text())
    (row,) = result["rows"]
    assert row["resolution"] == 32 and row["batch"] == 1 and row["macs_per_image"] > 0
    assert row["int8_gain"] == pytest.approx(row["int8_images_per_s"] / row["fp32_images_per_s"], rel=1e-2)
    assert row["int8_mb"] < row["fp32_mb"]  # int8 weights
    assert out_png.stat().st_size > 1000 and "GMAC/img" in capsys.readouterr().out


@pytest.mark.parametrize("args,match", [(["--synthetic", "48"], "among 32, 64"),
                                        (["PACK", "--synthetic", "64"], "not both"),
                                        ([], "give a pack folder")])
def test_synthetic_bench_argument_errors(args, match, capsys, pack_dir):
    from edge_t2i.cli import main

    assert main(["bench", *[str(pack_dir) if a == "PACK" else a for a in args]]) == 2
    assert match in capsys.readouterr().err


def test_table_keeps_the_machine_line_without_a_mac_count():
    from edge_t2i.bench.report import table

    result = {"machine": {"cpu": "X", "cores": 2, "int8_isa": "avx2"}, "threads": 2, "macs_per_image": None,
              "peak_gmacs": {"onnxruntime": {"fp32": 1.0, "int8": 2.0}}, "rows": [], "ratios": [], "skipped": []}
    first = table(result).splitlines()[0]
    assert first.startswith("machine: X (2 cores, avx2); 2 threads") and first.endswith("no MAC count")
    assert "onnxruntime GEMM peaks FP32 1 / INT8 2 GMAC/s" in first


def test_each_turn_leaves_its_first_call_untimed():
    import time

    from edge_t2i.bench.runner import _run_for

    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.001)

    out: list[float] = []
    _run_for(fn, 0.02, out)
    assert len(out) == len(calls) - 1 and max(out) < 0.04  # the slow first call is not among the timings
