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
def test_short_bench_run_writes_json_and_plot(pack_dir, tmp_path):
    from edge_t2i.cli import main

    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    rc = main(["bench", str(pack_dir), "--backends", "torch,ort-fp32,ort-int8,trt-int8", "--batch", "1,2",
               "--seconds", "0.5", "--warmup", "1", "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    result = json.loads(out_json.read_text())
    rows = result["rows"]
    assert {(r["config"], r["batch"]) for r in rows} == {(c, b) for c in ("torch", "ort-fp32", "ort-int8") for b in (1, 2)}
    for r in rows:
        assert {"backend", "precision", "batch", "images_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"} <= set(r)
        assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["images_per_s"] > 0
    for r in rows:  # each row's speed-up is its images/s over torch's at the same batch size
        ref = next(t for t in rows if t["config"] == "torch" and t["batch"] == r["batch"])
        assert r["vs_torch"] == round(r["images_per_s"] / ref["images_per_s"], 2), r
    assert any(s["config"] == "trt-int8" for s in result["skipped"])
    assert out_png.stat().st_size > 1000
