"""Bring your own generator: a DF-GAN checkpoint and a user's ONNX model, each with a bank from the user's
own text encoder, converted with one command into packs the runtime loads; the error cases as one line."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import edge_t2i
from edge_t2i.cli import main
from edge_t2i.convert import sources
from edge_t2i.convert.bank_input import read_user_bank
from edge_t2i.convert.fidelity import FidelityConfig
from edge_t2i.convert.pack import ConvertOptions, calibration_batch_size, convert
from edge_t2i.errors import DataError
from edge_t2i.models.dfgan import load_dfgan
from edge_t2i.runtime.noise import noise

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = [f"a {c} bird with {w} wings" for c in ("red", "blue", "green", "yellow", "black", "white")
           for w in ("short", "long", "striped", "spotted")]  # 24 prompts: 12 calibrate, 12 judge


def example(name: str):  # noqa: ANN201 - the module of examples/byo/<name>.py
    spec = importlib.util.spec_from_file_location(f"byo_{name}", ROOT / "examples" / "byo" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_bank(path: Path, dim: int = 256, prompts: list[str] = PROMPTS) -> Path:
    bank = example("make_bank")
    return bank.write_bank(path, prompts, bank.fake_encoder(prompts, dim), "test encoder")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("byo")


@pytest.fixture(scope="module")
def bank256(work) -> Path:
    return make_bank(work / "bank256.safetensors")


@pytest.fixture(scope="module")
def dfgan_ckpt(work) -> Path:
    # as a DDP run of the public code saves it: {'model': {'netG': {'module.fc.weight': ...}}, 'epoch': 0}
    return example("make_dfgan_checkpoint").make_checkpoint(work / "state_epoch_000.pth", resolution=64, ngf=4,
                                                            ddp=True)


@pytest.fixture(scope="module")
def dfgan_pack(work, dfgan_ckpt, bank256) -> Path:
    out = work / "dfgan-pack"
    assert main(["convert", str(dfgan_ckpt), "--arch", "dfgan", "--resolution", "64", "--ngf", "4", "--cond-dim",
                 "256", "--bank-embeddings", str(bank256), "--out", str(out), "--gate-images", "64",
                 "--calib-samples", "32", "--no-kid"]) == 0
    return out


def test_dfgan_pack_gives_the_torch_networks_images(dfgan_pack, dfgan_ckpt, bank256):
    net = load_dfgan(dfgan_ckpt)
    emb = read_user_bank(bank256).embeddings[:3]
    seeds = [5, 6, 7]
    with torch.no_grad():
        ref = net(torch.from_numpy(noise(seeds, 100)), torch.from_numpy(emb)).numpy()
    with edge_t2i.load(dfgan_pack, precision="fp32") as gen:
        fp32 = gen.generate(emb, seeds=seeds, raw=True)
    assert ref.shape == fp32.shape == (3, 3, 64, 64)
    assert np.abs(fp32 - ref).max() < 1e-4
    with edge_t2i.load(dfgan_pack, precision="int8") as gen:
        assert gen.choice.precision == "int8"
        int8 = gen.generate(emb, seeds=seeds, raw=True)
        pixels = gen.generate(PROMPTS[0], seeds=[0, 1])  # a prompt of the user's bank
    assert 0 < np.abs(int8 - ref).max() < 0.1 and pixels.shape == (2, 64, 64, 3) and pixels.dtype == np.uint8


def test_dfgan_manifest_report_and_disjoint_halves(dfgan_pack, bank256):
    m = json.loads((dfgan_pack / "manifest.json").read_text())
    assert m["model"]["architecture"] == "dfgan" and m["model"]["ngf"] == 4 and m["model"]["cond_dim"] == 256
    assert [t["name"] for t in m["io"]["inputs"]] == ["z", "embedding"] and m["io"]["outputs"][0]["shape"] == \
        ["batch", 3, 64, 64]
    g = m["gate"]
    assert g["kind"] == "fidelity" and g["passed"] and g["count"] == 64 and g["decided_by"] in ("psnr", "ssim")
    assert g["calib_prompts"] == m["calibration"]["prompts"] == 12 and g["eval_prompts"] == 12
    assert m["calibration"]["batch_size"] == 8 and m["export"]["parity_max_abs_error"] < 1e-4
    assert m["bank_source"]["encoder"] == "test encoder" and m["bank_source"]["dim"] == 256
    assert m["encoder"] is None  # the user's encoder is not in the pack: other prompts arrive as embeddings
    variant = m["cpu_variants"].get("int8")  # the uint8-activation CPU variant, gated by the same gate
    assert variant is None or (variant["file"] in m["files"] and variant["gate"]["passed"])
    report = (dfgan_pack / "report.md").read_text()
    assert f"decided by **{g['decided_by'].upper()}**" in report and "fewer than the default 2048" in report
    bank = edge_t2i.PromptBank.load(dfgan_pack / "bank.safetensors")
    assert bank.texts == PROMPTS and bank.encoder_name == "test encoder"


def convert_dfgan(ckpt, out, bank, options, quiet=True, **dims) -> dict:
    """The one conversion path on a DF-GAN source; the manifest as JSON."""
    return convert(sources.dfgan_checkpoint(ckpt, bank, options, **dims), out, options, quiet).to_dict()


def test_the_calibration_and_gate_halves_share_no_prompt(bank256):
    user = read_user_bank(bank256)
    calib_rows, eval_rows = user.split(0)
    assert len(calib_rows) == len(eval_rows) == 12 and not set(calib_rows) & set(eval_rows)
    assert sorted([*calib_rows, *eval_rows]) == list(range(24))
    assert calibration_batch_size(32) == calibration_batch_size(64) == 8 and calibration_batch_size(128) == 2 and calibration_batch_size(256) == 1


def test_bench_measures_a_dfgan_pack_with_its_torch_peer(dfgan_pack, dfgan_ckpt):
    from edge_t2i.bench.runner import run_bench

    result = run_bench(dfgan_pack, ["torch", "onnxruntime-fp32", "onnxruntime-int8"], [1], seconds=0.05, warmup=1, threads=0,
                       checkpoint=str(dfgan_ckpt), show=lambda _: None)
    assert {r["config"] for r in result["rows"]} == {"torch", "onnxruntime-fp32", "onnxruntime-int8"}
    assert all(r["images_per_s"] > 0 for r in result["rows"]) and result["macs_per_image"] > 0


def test_dfgan_at_256_px_converts(work, bank256):
    ckpt = example("make_dfgan_checkpoint").make_checkpoint(work / "g256.pth", resolution=256, ngf=4)
    out = work / "dfgan256"
    opts = ConvertOptions(calib_samples=8, fidelity_config=FidelityConfig(images=16, kid=False))
    m = convert_dfgan(ckpt, out, bank256, options=opts, quiet=True)  # sizes read from the checkpoint
    assert m["model"]["resolution"] == 256 and m["calibration"]["batch_size"] == 1 and m["gate"]["passed"]
    with edge_t2i.load(out) as gen:
        assert gen.generate(PROMPTS[:2], seeds=[0, 1]).shape == (2, 256, 256, 3)


@pytest.mark.slow
def test_dfgan_at_256_px_full_width_converts(work, bank256, capsys):
    """The released models' size (ngf 32, ~6 GB while calibrating)."""
    ckpt = example("make_dfgan_checkpoint").make_checkpoint(work / "g256x32.pth")
    out = work / "dfgan256x32"
    assert main(["convert", str(ckpt), "--arch", "dfgan", "--bank-embeddings", str(bank256), "--out", str(out),
                 "--gate-images", "16", "--calib-samples", "16", "--no-kid"]) == 0
    assert "gate: PASS" in capsys.readouterr().out
    with edge_t2i.load(out) as gen:
        assert gen.generate(PROMPTS[:1], seeds=[0]).shape == (1, 256, 256, 3)


# ---- the user's own ONNX model ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def user_onnx(work) -> Path:
    """Exported by a user-style script: inputs noise [n, 64], sentence [n, 256], output rgb in [0, 1]."""
    return example("export_onnx_generator").export(work / "user" / "generator.onnx", resolution=32)


@pytest.fixture(scope="module")
def user_pack(work, user_onnx, bank256) -> Path:
    out = work / "user-pack"
    assert main(["convert", str(user_onnx), "--io", "z=noise,embedding=sentence,image=rgb", "--image-range", "0,1",
                 "--bank-embeddings", str(bank256), "--out", str(out), "--gate-images", "24",
                 "--calib-samples", "16"]) == 0
    return out


def test_user_onnx_pack_runs_and_matches_the_users_model(user_pack, user_onnx, bank256):
    emb = read_user_bank(bank256).embeddings[:2]
    seeds = [3, 4]
    sess = ort.InferenceSession(str(user_onnx), providers=["CPUExecutionProvider"])
    rgb = sess.run(["rgb"], {"noise": noise(seeds, 64), "sentence": emb})[0]  # in [0, 1]
    with edge_t2i.load(user_pack, precision="fp32") as gen:
        image = gen.generate(emb, seeds=seeds, raw=True)
    assert image.shape == (2, 3, 32, 32) and np.abs(image - (rgb * 2 - 1)).max() < 1e-5  # rescaled to [-1, 1]
    with edge_t2i.load(user_pack) as gen:
        assert gen.generate(emb, seeds=seeds).shape == (2, 32, 32, 3)
    m = json.loads((user_pack / "manifest.json").read_text())
    assert m["model"]["architecture"] == "onnx" and m["model"]["user_io"] == {
        "z": "noise", "embedding": "sentence", "image": "rgb", "image_range": [0.0, 1.0]}
    graph = onnx.load(str(user_pack / "generator.fp32.onnx")).graph
    assert [i.name for i in graph.input] == ["z", "embedding"] and [o.name for o in graph.output] == ["image"]
    assert m["export"]["note"] == "" and m["export"]["ir_version"] <= 9  # torch.onnx.export(dynamo=False), opset 17


def test_bench_measures_an_onnx_pack_without_torch_peers(user_pack):
    from edge_t2i.bench.runner import run_bench

    result = run_bench(user_pack, ["torch", "onnxruntime-fp32", "onnxruntime-int8"], [1], seconds=0.05, warmup=1, threads=0,
                       show=lambda _: None)
    assert {r["config"] for r in result["rows"]} == {"onnxruntime-fp32", "onnxruntime-int8"}
    assert result["skipped"] == [{"config": "torch", "reason": "the pack was converted from an ONNX model: the "
                                                             "torch peers run this project's and DF-GAN's networks only"}]


def tiny_onnx(path: Path, nz: int = 8, dim: int = 16, side: int = 8, batch: object = "n", z_shape: list | None = None,
              extra_input: bool = False, extra_output: bool = False, scale: float = 1.0) -> Path:
    """A hand-built generator graph: (noise @ Wz + sentence @ We) -> [n, 3, side, side] -> Conv -> tanh * scale.
    Its inner sum is named `image`, a standard name the import must move out of the way."""
    rng = np.random.default_rng(0)
    px = 3 * side * side
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (nz, px)).astype(np.float32), "Wz"),
             numpy_helper.from_array(rng.normal(0, 0.3, (dim, px)).astype(np.float32), "We"),
             numpy_helper.from_array(np.array([-1, 3, side, side], np.int64), "shape"),
             numpy_helper.from_array(rng.normal(0, 0.3, (3, 3, 3, 3)).astype(np.float32), "Wc"),
             numpy_helper.from_array(np.array(scale, np.float32), "scale")]
    nodes = [helper.make_node("MatMul", ["noise", "Wz"], ["hz"]), helper.make_node("MatMul", ["sentence", "We"], ["he"]),
             helper.make_node("Add", ["hz", "he"], ["image"]), helper.make_node("Reshape", ["image", "shape"], ["r"]),
             helper.make_node("Conv", ["r", "Wc"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Tanh", ["c"], ["t"]),
             helper.make_node("Mul", ["t", "scale"], ["rgb"])]
    inputs = [helper.make_tensor_value_info("noise", TensorProto.FLOAT, z_shape or [batch, nz]),
              helper.make_tensor_value_info("sentence", TensorProto.FLOAT, [batch, dim])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("temperature", TensorProto.FLOAT, [1]))
    outputs = [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [batch, 3, side, side])]
    if extra_output:
        nodes.append(helper.make_node("Relu", ["hz"], ["features"]))
        outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, px]))
    model = helper.make_model(helper.make_graph(nodes, "user", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_a_json_io_spec_with_a_range_and_standard_names_inside(work):
    model = tiny_onnx(work / "json" / "g.onnx", scale=2.0, extra_output=True)  # tanh * 2: range [-2, 2]
    spec = work / "json" / "io.json"
    spec.write_text(json.dumps({"z": "noise", "embedding": "sentence", "image": "rgb", "image_range": [-2, 2]}))
    bank = make_bank(work / "json" / "bank.safetensors", dim=16)
    out = work / "json" / "pack"
    assert main(["convert", str(model), "--io", str(spec), "--bank-embeddings", str(bank), "--out", str(out),
                 "--gate-images", "16", "--calib-samples", "8", "--no-kid", "--quantize-output"]) == 0  # its one Conv
    emb = read_user_bank(bank).embeddings[:2]
    rgb = ort.InferenceSession(str(model)).run(["rgb"], {"noise": noise([1, 2], 8), "sentence": emb})[0]
    with edge_t2i.load(out, precision="fp32") as gen:
        assert np.abs(gen.generate(emb, seeds=[1, 2], raw=True) - rgb / 2).max() < 1e-6
    graph = onnx.load(str(out / "generator.fp32.onnx")).graph
    assert [o.name for o in graph.output] == ["image"] and not any(n.op_type == "Relu" for n in graph.node)
    assert "image_inner" in {o for n in graph.node for o in n.output}  # the user's inner `image`, renamed
    m = json.loads((out / "manifest.json").read_text())
    ir = onnx.load(str(model)).ir_version
    assert (f"IR {ir}, opset 17: newer than ONNX Runtime 1.17 reads" in m["export"]["note"]) == (ir > 9)


def run_error(argv: list[str], capsys) -> str:  # noqa: ANN001
    """The one line `edge-t2i` prints for a user error (exit 2)."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-t2i: error: "), err
    return err[0]


@pytest.mark.parametrize("build, io, message", [
    ({}, "z=nosie,embedding=sentence,image=rgb", "--io z=nosie: unknown model input 'nosie'; did you mean 'noise'?"),
    ({}, "z=noise,embedding=sentence,image=out", "--io image=out: unknown model output 'out'; valid: rgb"),
    ({}, "z=noise,embeding=sentence,image=rgb", "unknown --io key 'embeding'; did you mean 'embedding'?"),
    ({}, "z=noise,image=rgb", "--io names no 'embedding'"),
    ({"extra_input": True}, None, "input 'temperature' that --io does not name"),
    ({"dim": 32}, None, "'sentence' takes 32-d vectors but --bank-embeddings holds 16-d ones"),
    ({"batch": 1}, None, "has a fixed batch size 1: re-export with a dynamic batch dimension"),
    ({"z_shape": ["n", 8, 1, 1]}, None, "has shape ['n', 8, 1, 1]; a pack's z is [batch, nz]"),
    ({"scale": 255.0}, None, "far outside its declared range [-1, 1]: declare the range with --image-range"),
])
def test_onnx_models_that_do_not_fit_are_one_line_errors(work, capsys, build, io, message):
    name = "-".join(f"{k}{v}" for k, v in build.items()) or "plain"
    model = tiny_onnx(work / "bad" / f"{name}.onnx", **build)
    bank = make_bank(work / "bad" / "bank16.safetensors", dim=16)
    out = work / "bad" / "pack"
    line = run_error(["convert", str(model), "--io", io or "z=noise,embedding=sentence,image=rgb",
                      "--bank-embeddings", str(bank), "--out", str(out)], capsys)
    assert message in line
    assert not out.exists()


def test_dfgan_errors_are_one_line(work, dfgan_ckpt, capsys):
    bank16 = make_bank(work / "bank16b.safetensors", dim=16)
    out = work / "nope"
    assert "takes 256-d sentence vectors (--cond-dim) but --bank-embeddings holds 16-d ones" in run_error(
        ["convert", str(dfgan_ckpt), "--arch", "dfgan", "--bank-embeddings", str(bank16), "--out", str(out)], capsys)
    bank256 = make_bank(work / "bank256b.safetensors")
    line = run_error(["convert", str(dfgan_ckpt), "--arch", "dfgan", "--ngf", "8", "--bank-embeddings", str(bank256),
                      "--out", str(out)], capsys)
    assert "tensor 'fc.weight' has shape [512, 100]" in line and "imply --resolution 64 --ngf 4" in line
    evil = work / "evil.pth"
    evil.write_bytes(b"\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c"
                     b"\x04true\x94\x85\x94R\x94.")  # pickle of os.system("true"): needs code to load
    assert "refusing" in run_error(["convert", str(evil), "--arch", "dfgan", "--bank-embeddings", str(bank256),
                                    "--out", str(out)], capsys)
    assert "--arch dfgan needs --bank-embeddings FILE" in run_error(
        ["convert", str(dfgan_ckpt), "--arch", "dfgan", "--out", str(out)], capsys)
    assert not out.exists()


def test_flags_that_do_not_fit_the_source_are_refused(checkpoint_dir, dfgan_ckpt, work, capsys):
    out = str(work / "nope2")
    assert "--ngf is only for --arch dfgan" in run_error(["convert", str(checkpoint_dir), "--ngf", "8", "--out", out],
                                                         capsys)
    assert "--bank-embeddings is only for --arch dfgan or an ONNX model" in run_error(
        ["convert", str(checkpoint_dir), "--bank-embeddings", "b.safetensors", "--out", out], capsys)
    assert "--max-drop is only for this project's checkpoints" in run_error(
        ["convert", str(dfgan_ckpt), "--arch", "dfgan", "--bank-embeddings", "b", "--max-drop", "1", "--out", out],
        capsys)
    assert "--image-range is only for an ONNX model" in run_error(
        ["convert", str(dfgan_ckpt), "--arch", "dfgan", "--image-range", "0,1", "--bank-embeddings", "b",
         "--out", out], capsys)
    assert "is an ONNX model (drop --arch)" in run_error(["convert", "m.onnx", "--arch", "dfgan", "--out", out], capsys)
    assert "--io is only for an ONNX model, not a checkpoint of --arch edge" in run_error(
        ["convert", str(checkpoint_dir), "--arch", "edge", "--io", "z=a,embedding=b,image=c", "--out", out], capsys)


# ---- the bank file ----------------------------------------------------------------------------------
def write_raw_bank(path: Path, embeddings: np.ndarray, meta: dict) -> Path:
    from edge_t2i._io import write_safetensors

    write_safetensors(path, {"embeddings": embeddings}, meta)
    return path


def test_bank_prompts_from_a_sidecar_json(tmp_path):
    emb = np.eye(3, 4, dtype=np.float32)
    path = write_raw_bank(tmp_path / "damsm.safetensors", emb, {})
    (tmp_path / "damsm.json").write_text(json.dumps({"prompts": ["a", "b", "c"], "encoder": "DAMSM birds"}))
    bank = read_user_bank(path)
    assert bank.prompts == ["a", "b", "c"] and bank.encoder == "DAMSM birds" and np.array_equal(bank.embeddings, emb)
    (tmp_path / "damsm.json").write_text(json.dumps(["x", "y", "z"]))
    assert read_user_bank(path).prompts == ["x", "y", "z"] and read_user_bank(path).encoder == "user"


@pytest.mark.parametrize("emb, meta, message", [
    (np.zeros((2, 4), np.float32), {"prompts": '["a"]'}, "1 prompts for 2 embedding rows"),
    (np.zeros((2, 4), np.float32), {"prompts": '["a bird", "A  Bird"]'}, "prompt 1 ('A  Bird') repeats prompt 0"),
    (np.zeros((1, 4), np.float32), {"prompts": '["a"]'}, "at least 2 are needed"),
    (np.zeros((2, 4), np.float32), {"prompts": '["a", 3]'}, "expected a JSON list of prompt strings"),
    (np.zeros((2, 4), np.float32), {"prompts": "[nope"}, "is not valid JSON"),
    (np.zeros((2, 4), np.float32), {}, "no prompts: put a JSON list of strings in the metadata key 'prompts'"),
    (np.array([[0, 1], [np.nan, 0]], np.float32), {"prompts": '["a", "b"]'}, "prompt 1 ('b') holds NaN or inf"),
    (np.zeros(4, np.float32), {"prompts": '["a"]'}, "expected a tensor 'embeddings' [N, d]"),
])
def test_bad_bank_files_are_data_errors(tmp_path, emb, meta, message):
    path = write_raw_bank(tmp_path / "bank.safetensors", emb, meta)
    with pytest.raises(DataError, match=None) as info:
        read_user_bank(path)
    assert message in str(info.value)


def test_a_float64_or_missing_bank_file_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="not found .*safetensors"):
        read_user_bank(tmp_path / "none.safetensors")
    (tmp_path / "x.safetensors").write_bytes(b"\x00" * 4)
    with pytest.raises(DataError, match="is not a float32/float16 safetensors file"):
        read_user_bank(tmp_path / "x.safetensors")


def test_parse_io_forms_and_errors(tmp_path):
    from edge_t2i.convert.onnx_import import IOSpec, parse_io
    from edge_t2i.errors import ConvertError

    assert parse_io("z=a, embedding=b ,image=c") == IOSpec("a", "b", "c")
    assert parse_io(None, "0,255") == IOSpec(image_range=(0.0, 255.0))
    spec = tmp_path / "io.json"
    spec.write_text('{"z": "a", "embedding": "b", "image": "c", "image_range": [0, 1]}')
    assert parse_io(str(spec)) == IOSpec("a", "b", "c", (0.0, 1.0))
    for io, rng, message in [("z=a,embedding=a,image=c", None, "three different tensors"),
                             ("z=a,embedding=b,image=c", "1,0", "LO < HI"), ("z=a,embedding=b,image=c", "x", "LO,HI"),
                             ("z=a,embedding=b,image=c", "nan,1", "finite"), ("z=a;embedding=b", None, "z=NAME"),
                             (str(spec), "0,1", "given twice"), (str(tmp_path / "no.json"), None, "not found")]:
        with pytest.raises(ConvertError, match=message):
            parse_io(io, rng)


def test_a_bank_written_by_the_safetensors_package_reads(tmp_path):
    """The documented way (docs/pack-spec.md): safetensors.numpy.save_file with the prompts in the metadata."""
    from safetensors.numpy import save_file

    vectors = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    save_file({"embeddings": vectors}, str(tmp_path / "b.safetensors"),
              metadata={"prompts": json.dumps(["a", "b", "c"]), "encoder": "mine"})
    bank = read_user_bank(tmp_path / "b.safetensors")
    assert bank.prompts == ["a", "b", "c"] and bank.encoder == "mine" and np.array_equal(bank.embeddings, vectors)


def test_minimum_onnxruntime_runs_the_byo_packs(dfgan_pack, user_pack, tmp_path):
    """As tests/test_min_onnxruntime.py: the declared minimum ONNX Runtime loads what these conversions write."""
    import subprocess

    from tests.test_min_onnxruntime import PYTHON, SCRIPT

    if not PYTHON:
        pytest.skip("set EDGE_T2I_MIN_ORT_PYTHON to a python with the minimum onnxruntime")
    for pack, nz in ((dfgan_pack, 100), (user_pack, 64)):
        models = sorted(str(p) for p in pack.glob("generator.*.onnx"))
        rng = np.random.default_rng(0)
        feeds = {"z": rng.standard_normal((2, nz), dtype=np.float32),
                 "embedding": rng.standard_normal((2, 256), dtype=np.float32)}
        np.savez(tmp_path / "inputs.npz", **feeds)
        proc = subprocess.run([PYTHON, "-c", SCRIPT, str(tmp_path / "inputs.npz"), *models], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        for m in models:
            here = ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(["image"], feeds)[0]
            assert np.abs(np.array(result[m], np.float32) - here).max() < 1e-3, m


def test_a_failing_gate_keeps_the_most_sensitive_layers_in_float(work, bank256, monkeypatch):
    """The mixed-precision fallback (mixed.keep_sensitive_in_float) driven by the gate without an oracle: the
    all-INT8 attempt is made to fail, the probe ranks the lowest-SQNR layers by per-image PSNR/SSIM verdicts,
    and one layer in float passes."""
    import dataclasses

    from edge_t2i.convert import fidelity

    judge, calls = fidelity.judge, []

    def first_fails(*args, **kwargs):  # noqa: ANN202
        result = judge(*args, **kwargs)
        calls.append(result)
        return dataclasses.replace(result, passed=False, reason="forced to fail") if len(calls) == 1 else result

    monkeypatch.setattr(fidelity, "judge", first_fails)
    ckpt = example("make_dfgan_checkpoint").make_checkpoint(work / "g32.pth", resolution=32, ngf=4)
    opts = ConvertOptions(calib_samples=8, fidelity_config=FidelityConfig(images=16, kid=False))
    m = convert_dfgan(ckpt, work / "mixed", bank256, options=opts, quiet=True)
    assert m["gate"]["passed"] and [a["passed"] for a in m["gate"]["attempts"]] == [False, True]
    measured = [k for k in m["kept_in_float"] if "sqnr_db" in k]  # after the output layer, kept by rule
    assert len(measured) == 1 and len(m["kept_in_float"]) == 2 and measured[0]["sqnr_db"] is not None
    assert "per-image PSNR/SSIM verdicts differ from FP32" in measured[0]["why"]
    assert measured[0]["node"] in (work / "mixed" / "report.md").read_text()


def test_no_gate_keeps_a_failing_int8_and_says_so(work, dfgan_ckpt, bank256, capsys):
    out = work / "nogate"
    assert main(["convert", str(dfgan_ckpt), "--arch", "dfgan", "--bank-embeddings", str(bank256), "--out", str(out),
                 "--gate-images", "16", "--calib-samples", "8", "--min-ssim", "1", "--no-gate", "--no-kid"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert not m["gate"]["passed"] and not m["gate"]["enforced"] and m["gate"]["decided_by"] == "ssim"
    assert "**FAIL**, decided by **SSIM**" in (out / "report.md").read_text()
    assert "gate: FAIL (decided by SSIM)" in capsys.readouterr().out
