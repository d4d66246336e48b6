"""Convert paths beyond the default INT8 pack: the TensorRT 10/11 builder (on a fake `tensorrt`), the ModelOpt
quantizer's command line (on a fake ModelOpt), --precision fp16, --with-encoder, and the gate's fallback when it
succeeds (layers kept in float). Nothing here runs TensorRT or ModelOpt."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

from edge_t2i import calib
from edge_t2i._io import sha256_file
from edge_t2i.convert import engine as engine_mod
from edge_t2i.convert import gate as gate_mod
from edge_t2i.convert import mixed
from edge_t2i.convert import quantize as quantize_mod
from edge_t2i.convert.pack import ConvertOptions, convert_checkpoint
from edge_t2i.convert.quantize import QuantConfig, count_qdq, quantizable_nodes, quantize_int8
from edge_t2i.errors import ConvertError, InputError, MissingExtraError
from tests.conftest import BANK_PROMPTS

DIMS = {"z": 100, "embedding": 384}


# --------------------------------------------------------------------------- TensorRT 10 / 11 builder (fake)

def fake_builder_trt(version: str, parse_ok: bool = True, plan: bytes | None = b"PLAN\x00\x01bytes") -> types.ModuleType:
    """A fake `tensorrt` with the builder API build_engine uses, recording what it is asked.

    TensorRT 10: BuilderFlag has FP16 and INT8, NetworkDefinitionCreationFlag has EXPLICIT_BATCH (0) and
    STRONGLY_TYPED (1). TensorRT 11: neither precision flags nor those creation flags exist."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.log = {"flags": [], "network_flags": None, "pool": None, "profiles": [], "timing_cache_in": None}
    major = int(version.split(".")[0])
    if major >= 11:
        trt.BuilderFlag = SimpleNamespace(REFIT="REFIT", DEBUG="DEBUG")
        trt.NetworkDefinitionCreationFlag = SimpleNamespace()
    else:
        trt.BuilderFlag = SimpleNamespace(FP16="FP16", INT8="INT8", REFIT="REFIT")
        trt.NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class Cache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return np.frombuffer(b"CACHE:" + self.data, np.uint8)

    class Config:
        def set_memory_pool_limit(self, pool, size):
            trt.log["pool"] = (pool, size)

        def set_flag(self, flag):
            trt.log["flags"].append(flag)

        def add_optimization_profile(self, profile):
            trt.log["profiles"].append(profile.shapes)

        def create_timing_cache(self, data):
            trt.log["timing_cache_in"] = bytes(data)
            return Cache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            return True

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            trt.log["network_flags"] = flags
            return SimpleNamespace()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            # IHostMemory: a buffer with .nbytes (a uint8 array has both)
            return None if plan is None else np.frombuffer(plan, np.uint8)

    class OnnxParser:
        errors = ["In node 3 (Conv): unsupported weights", "In node 7 (Gemm): bad shape"]

        def __init__(self, network, logger):
            self.num_errors = 0

        def parse(self, data):
            assert data.startswith(b"ONNX")
            self.num_errors = 0 if parse_ok else len(self.errors)
            return parse_ok

        def get_error(self, i):
            return self.errors[i]

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    trt.Runtime = object  # import_tensorrt checks the library (not only stubs) is there
    return trt


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "generator.int8.onnx"
    path.write_bytes(b"ONNX model bytes")
    return path


def use_trt(monkeypatch, trt, cc: str = "8.7") -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(engine_mod, "gpu_identity", lambda: (trt.__version__, cc))


def test_network_flags_and_precision_flags_for_tensorrt_10_and_11():
    t10, t11 = fake_builder_trt("10.3.0"), fake_builder_trt("11.0.0")
    assert engine_mod.network_flags(t10) == 1 << 1  # STRONGLY_TYPED
    assert engine_mod.network_flags(t11) == 0       # always strongly typed, no flag to ask for

    def flags(trt, precision, strongly_typed):  # noqa: ANN001, ANN202
        trt.log["flags"].clear()
        engine_mod.configure_precision(trt, SimpleNamespace(set_flag=trt.log["flags"].append), precision,
                                       strongly_typed)
        return list(trt.log["flags"])

    # weakly typed TensorRT 10: precision comes from builder flags
    assert flags(t10, "int8", False) == ["FP16", "INT8"]
    assert flags(t10, "fp16", False) == ["FP16"]
    assert flags(t10, "fp32", False) == []
    # strongly typed (TensorRT 10 with STRONGLY_TYPED, and TensorRT 11): the ONNX's types and Q/DQ decide
    for trt in (t10, t11):
        for precision in ("int8", "fp16", "fp32"):
            assert flags(trt, precision, True) == []
    # TensorRT 11 has no INT8/FP16 flags at all: asking never touches them
    assert flags(t11, "int8", False) == []


@pytest.mark.parametrize("version,expect_flags", [("10.3.0", 2), ("11.0.0", 0)])
def test_build_engine_writes_the_plan_bytes_under_its_name(monkeypatch, onnx_file, tmp_path, version, expect_flags):
    trt = fake_builder_trt(version)
    use_trt(monkeypatch, trt, "8.7")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    cfg = engine_mod.EngineConfig("int8", max_batch=8, opt_batch=2, workspace_bytes=1 << 20)
    out = engine_mod.build_engine(onnx_file, tmp_path, DIMS, cfg, timing_cache=cache)
    assert out == tmp_path / f"generator.int8.trt{version}.sm87.plan"
    assert out.read_bytes() == b"PLAN\x00\x01bytes"  # exactly the serialized plan: no header
    assert trt.log["network_flags"] == expect_flags
    assert trt.log["flags"] == []  # strongly typed on both: no precision flags
    assert trt.log["pool"] == ("WORKSPACE", 1 << 20)
    assert trt.log["profiles"] == [{"z": ((1, 100), (2, 100), (8, 100)),
                                    "embedding": ((1, 384), (2, 384), (8, 384))}]
    assert trt.log["timing_cache_in"] == b"old" and cache.read_bytes() == b"CACHE:old"


def test_build_engine_failures_are_convert_errors(monkeypatch, onnx_file, tmp_path):
    use_trt(monkeypatch, fake_builder_trt("10.3.0", parse_ok=False))
    with pytest.raises(ConvertError, match="cannot parse") as err:
        engine_mod.build_engine(onnx_file, tmp_path, DIMS)
    assert "In node 3 (Conv): unsupported weights; In node 7 (Gemm): bad shape" in str(err.value)

    use_trt(monkeypatch, fake_builder_trt("11.0.0", plan=None))
    with pytest.raises(ConvertError, match="produced no engine"):
        engine_mod.build_engine(onnx_file, tmp_path, DIMS)
    use_trt(monkeypatch, fake_builder_trt("11.0.0", plan=b""))
    with pytest.raises(ConvertError, match="produced no engine"):
        engine_mod.build_engine(onnx_file, tmp_path, DIMS)
    assert not list(tmp_path.glob("*.plan"))

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed
    with pytest.raises(ConvertError, match="cannot build a TensorRT engine here"):
        engine_mod.build_engine(onnx_file, tmp_path, DIMS)


# --------------------------------------------------------------------------- ModelOpt (fake) command line

def modelopt_parser() -> argparse.ArgumentParser:
    """The options of `python -m modelopt.onnx.quantization` this package uses, with ModelOpt's names, nargs and
    choices (NVIDIA/Model-Optimizer, modelopt/onnx/quantization/__main__.py, get_parser)."""
    p = argparse.ArgumentParser("python -m modelopt.onnx.quantization")
    p.add_argument("--onnx_path", required=True)
    p.add_argument("--quantize_mode", choices=["fp8", "int8", "int4"], default="int8")
    p.add_argument("--calibration_method", choices=["max", "entropy", "awq_clip", "rtn_dq"])
    p.add_argument("--calibration_data_path")
    p.add_argument("--calibration_eps", nargs="+", default=["cpu", "cuda:0", "trt"])
    p.add_argument("--op_types_to_quantize", nargs="+")
    p.add_argument("--nodes_to_exclude", nargs="+")
    p.add_argument("--high_precision_dtype", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--output_path")
    return p


@pytest.fixture
def fake_modelopt(monkeypatch):
    """`import modelopt.onnx.quantization` succeeds; subprocess.run in quantize.py records the command, checks
    it parses with ModelOpt's option names, keeps the calibration data it points at and writes the output."""
    for name in ("modelopt", "modelopt.onnx", "modelopt.onnx.quantization"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    calls: list[dict] = []
    result = {"returncode": 0, "stderr": ""}

    def run(cmd, capture_output=False, text=False):  # noqa: ANN001, ANN202
        assert cmd[:3] == [sys.executable, "-m", "modelopt.onnx.quantization"]
        args = modelopt_parser().parse_args(cmd[3:])
        with np.load(args.calibration_data_path) as f:
            calls.append({"cmd": cmd, "args": args, "calib": {k: f[k] for k in f.files}})
        if result["returncode"] == 0:
            Path(args.output_path).write_bytes(b"modelopt int8 model")
        return subprocess.CompletedProcess(cmd, result["returncode"], "", result["stderr"])

    monkeypatch.setattr(quantize_mod, "subprocess", SimpleNamespace(run=run))
    return calls, result


@pytest.fixture(scope="module")
def calib_data(pack_dir):
    return calib.CalibrationData.load(pack_dir / "calibration.safetensors")


@pytest.mark.parametrize("ours,theirs", [("minmax", "max"), ("entropy", "entropy")])
def test_modelopt_command_carries_method_op_types_and_excluded_nodes(fake_modelopt, pack_dir, calib_data, tmp_path,
                                                                     ours, theirs):
    calls, _ = fake_modelopt
    fp32 = pack_dir / "generator.fp32.onnx"
    keep = tuple(quantizable_nodes(fp32)[:2])  # e.g. ("/blocks.0/conv1/Conv", "/blocks.0/conv2/Conv")
    cfg = QuantConfig(method=ours, quantizer="modelopt", op_types=("Conv", "Gemm"), exclude=keep)
    out = quantize_int8(fp32, calib_data, tmp_path / "int8.onnx", cfg)
    assert out.read_bytes() == b"modelopt int8 model"
    (call,) = calls
    args = call["args"]
    assert args.onnx_path == str(fp32) and args.quantize_mode == "int8"
    assert args.calibration_method == theirs
    assert args.op_types_to_quantize == ["Conv", "Gemm"]
    assert args.high_precision_dtype == "fp32"  # kept-in-float layers stay FP32, like the gate measured
    # ModelOpt matches each pattern with re.match: each must select exactly its own node and no other
    names = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node]
    assert len(args.nodes_to_exclude) == len(keep)
    for pattern, node in zip(args.nodes_to_exclude, keep):
        assert [n for n in names if re.match(pattern, n)] == [node]
    np.testing.assert_array_equal(call["calib"]["z"], calib_data.z)
    np.testing.assert_array_equal(call["calib"]["embedding"], calib_data.embedding)


def test_modelopt_without_exclusions_and_its_failures(fake_modelopt, pack_dir, calib_data, tmp_path):
    calls, result = fake_modelopt
    fp32 = pack_dir / "generator.fp32.onnx"
    quantize_int8(fp32, calib_data, tmp_path / "a.onnx", QuantConfig(method="entropy", quantizer="modelopt"))
    assert calls[0]["args"].nodes_to_exclude is None and calls[0]["args"].op_types_to_quantize == ["Conv", "ConvTranspose", "Gemm"]
    result.update(returncode=1, stderr="Traceback ...\nValueError: no calibration data for input 'z'\n")
    with pytest.raises(ConvertError, match="ModelOpt quantization failed: ValueError: no calibration data"):
        quantize_int8(fp32, calib_data, tmp_path / "b.onnx", QuantConfig(method="entropy", quantizer="modelopt"))
    assert not (tmp_path / "b.onnx").exists() and not list(tmp_path.glob(".*"))


def test_modelopt_refuses_percentile_and_says_what_to_use():
    with pytest.raises(ConvertError, match="no percentile calibration.*--calib-method minmax or entropy"):
        QuantConfig(method="percentile", quantizer="modelopt")
    with pytest.raises(ConvertError, match="no percentile calibration"):  # before any stage runs
        ConvertOptions(quantizer="modelopt")
    ConvertOptions(quantizer="modelopt", calib_method="entropy")


def test_modelopt_not_installed_names_the_extra(monkeypatch, pack_dir, calib_data, tmp_path):
    monkeypatch.setitem(sys.modules, "modelopt", None)
    with pytest.raises(MissingExtraError, match=r"edge-t2i\[modelopt\]"):
        quantize_int8(pack_dir / "generator.fp32.onnx", calib_data, tmp_path / "x.onnx",
                      QuantConfig(method="minmax", quantizer="modelopt"))


# --------------------------------------------------------------------------- --precision fp16 + --with-encoder

@pytest.fixture(scope="module")
def fp16_pack(checkpoint_dir, prompt_files, tmp_path_factory):
    """One conversion for both paths: FP16 generator and the text encoder (its export takes a few seconds)."""
    out = tmp_path_factory.mktemp("fp16") / "pack"
    opts = ConvertOptions(precision="fp16", with_encoder=True, prompts=str(prompt_files["bank"]),
                          calib_prompts=str(prompt_files["calib"]), eval_prompts=str(prompt_files["eval"]))
    return out, convert_checkpoint(checkpoint_dir, out, opts, quiet=True).to_dict()


def test_fp16_pack_lists_the_fp16_model_and_it_is_fp16(fp16_pack):
    pack, manifest = fp16_pack
    assert manifest["models"] == {"fp32": "generator.fp32.onnx", "fp16": "generator.fp16.onnx"}
    assert manifest["files"]["generator.fp16.onnx"]["sha256"] == sha256_file(pack / "generator.fp16.onnx")
    assert json.loads((pack / "manifest.json").read_text())["models"] == manifest["models"]
    assert not (pack / "generator.int8.onnx").exists() and manifest["gate"] is None
    model = onnx.load(str(pack / "generator.fp16.onnx"))
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    types_ = {i.data_type for i in model.graph.initializer if i.name in conv_weights}
    assert types_ == {onnx.TensorProto.FLOAT16}
    io = [t.type.tensor_type.elem_type for t in [*model.graph.input, *model.graph.output]]
    assert io == [onnx.TensorProto.FLOAT] * 3  # the runtime feeds and reads float32


def test_fp16_pack_generates_close_to_fp32(fp16_pack):
    from edge_t2i.runtime import load

    pack, _ = fp16_pack
    with load(pack, precision="fp16", threads=1) as g16, load(pack, precision="fp32", threads=1) as g32:
        assert g16.choice.precision == "fp16" and g32.choice.precision == "fp32"
        seeds = list(range(8))
        a = g16.generate(BANK_PROMPTS, seeds=seeds, raw=True)
        b = g32.generate(BANK_PROMPTS, seeds=seeds, raw=True)
        err = float(np.abs(a - b).max())
        # measured: max |fp16 - fp32| 9.4e-5..9.7e-5 (mean 2.2e-5) on outputs in [-1, 1], uint8 pixels off by
        # at most 1 (3 seed sets, ONNX Runtime CPU). > 0: the FP16 model really ran; 1e-3 leaves a 10x margin.
        assert 0 < err < 1e-3, err
        px = np.abs(g16.generate(BANK_PROMPTS, seeds=seeds).astype(int) - g32.generate(BANK_PROMPTS, seeds=seeds))
        assert px.max() <= 1


def test_with_encoder_pack_encodes_prompts_not_in_the_bank(fp16_pack):
    from edge_t2i.runtime import load
    from edge_t2i.runtime.encoder import OnnxTextEncoder

    pack, manifest = fp16_pack
    assert manifest["encoder"] == {"model": "encoder.int8.onnx", "tokenizer": "tokenizer.json"}
    for name in ("encoder.int8.onnx", "tokenizer.json"):
        assert manifest["files"][name]["sha256"] == sha256_file(pack / name)
    new = "a giant violet hexagon located at the northeast"
    with load(pack, precision="fp32", threads=1) as g:
        assert g.bank.encoder is not None and new not in BANK_PROMPTS
        img = g.generate(new, seeds=[3])  # default policy with an encoder: "encode"
        # a shapes-trained pack carries the descriptive lexicon: "giant" is read as "large", "violet" as "purple"
        read = "a large purple hexagon located at the northeast"
        assert g.explain(new)["read_as"] == read
        emb = OnnxTextEncoder(pack / "encoder.int8.onnx", pack / "tokenizer.json").encode([read])
        assert np.array_equal(img, g.generate(emb, seeds=[3]))
        nearest = g.bank.nearest(new)
        assert not nearest.exact
        assert not np.array_equal(img, g.generate(nearest.prompt, seeds=[3]))  # encoded, not the nearest
        with pytest.raises(InputError):
            g.generate(new, seeds=[3], unknown="error")


def test_a_pack_with_an_encoder_serves_its_bank_without_tokenizers(fp16_pack, monkeypatch):
    """The encoder loads only when a prompt needs it: a runtime-only install without the `encoder`
    extra still generates every prompt in the bank, and says which extra an unknown prompt needs."""
    from edge_t2i.errors import MissingExtraError
    from edge_t2i.runtime import load

    for name in [m for m in sys.modules if m == "tokenizers" or m.startswith("tokenizers.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # `import tokenizers` fails
    pack, _ = fp16_pack
    with load(pack, precision="fp32", threads=1) as g:
        assert g.generate(BANK_PROMPTS[:2], seeds=[0, 1]).shape[0] == 2
        with pytest.raises(MissingExtraError, match=r"edge-t2i\[encoder\]"):
            g.generate("a prompt the bank does not hold", seeds=[0])


# --------------------------------------------------------------------------- gate fallback that succeeds

def test_gate_fallback_keeps_layers_in_float_until_it_passes(checkpoint_dir, prompt_files, tmp_path, monkeypatch):
    """A gate that passes only INT8 models with at least two Conv/Gemm layers really left in float (read from
    the written model, not from the arguments) besides the output layer (in float by rule): the all-INT8 model
    and the 1-layer one fail, 2 layers pass."""
    written: list[Path] = []
    real_quantize, real_judge = mixed.quantize_int8, gate_mod.judge

    def quantize(fp32, data, out, config):  # noqa: ANN001, ANN202
        written.append(Path(out))
        return real_quantize(fp32, data, out, config)

    def judge(images_fp32, images_int8, eval_set, config):  # noqa: ANN001, ANN202
        counts = count_qdq(written[-1])
        in_float = sum(counts[op] - counts[f"{op}_with_qdq_inputs"] for op in ("Conv", "Gemm")) - 1  # to-RGB
        res = real_judge(images_fp32, images_int8, eval_set, config)
        return dataclasses.replace(res, passed=in_float >= 2, reason=f"test gate: {in_float} in float")

    monkeypatch.setattr(mixed, "quantize_int8", quantize)
    monkeypatch.setattr(gate_mod, "judge", judge)
    opts = ConvertOptions(prompts=str(prompt_files["bank"]), calib_prompts=str(prompt_files["calib"]), with_encoder=False,
                          eval_prompts=str(prompt_files["eval"]), calib_samples=32,
                          gate_config=gate_mod.GateConfig(seeds_per_prompt=1))
    manifest = convert_checkpoint(checkpoint_dir, tmp_path / "pack", opts, quiet=True).to_dict()

    g = manifest["gate"]
    assert g["passed"] and g["enforced"] and g["reason"] == "test gate: 2 in float"
    assert [(a["excluded"], a["passed"]) for a in g["attempts"]] == [(0, False), (1, False), (2, True)]
    kept = [k for k in manifest["kept_in_float"] if "sqnr_db" in k]  # the measured ones, after the rule's
    assert len(kept) == 2 and all("oracle verdicts differ" in k["why"] and isinstance(k["sqnr_db"], float)
                                  for k in kept)
    flips = [(k["verdict_flips_in_float"], k["sqnr_db"]) for k in kept]
    assert flips == sorted(flips)  # fewest remaining disagreements first, SQNR breaks ties
    model = onnx.load(str(tmp_path / "pack" / "generator.int8.onnx"))
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    layers = {n.name: n for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
    float_names = {k["node"] for k in manifest["kept_in_float"]}  # measured + the output layer
    assert float_names <= set(layers) and len(float_names) == 3
    for name, node in layers.items():
        dequantized = [producer.get(i) == "DequantizeLinear" for i in node.input[:2]]
        # a float layer's weight is plain; its input may still come through a DQ shared with INT8 neighbours
        assert dequantized[1] is (name not in float_names) and (name in float_names or all(dequantized)), name
    q = manifest["qdq_nodes"]
    assert q["Conv_with_qdq_inputs"] + q["Gemm_with_qdq_inputs"] == len(layers) - 3


@pytest.mark.parametrize("batches", [16, 32, 48])
def test_minmax_calibration_sees_every_batch(tmp_path, batches):
    """ONNX Runtime's MinMax calibrator discards each full chunk of CalibMaxIntermediateOutputs without
    computing its ranges (1.32), which once made the default 32 batches either fail ("No data is collected")
    or calibrate on the last 2. Every batch but the last two holds 100, the last two 1: the scale must cover 100."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["z", "w"], ["image"], name="c")], "g",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 1, 2, 2]),
                               helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["b", 1])],
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 1, 2, 2])], [w])
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    z = np.full((batches * 2, 1, 2, 2), 100.0, np.float32)
    z[-4:] = 1.0
    data = calib.CalibrationData(z, np.zeros((batches * 2, 1), np.float32), 2)
    out = quantize_int8(model, data, tmp_path / "q.onnx", QuantConfig(method="minmax"))
    q = onnx.load(str(out)).graph
    scales = {t.name: float(numpy_helper.to_array(t)) for t in q.initializer if t.name.startswith("z_scale")}
    assert scales and all(v == pytest.approx(100 / 127, rel=1e-3) for v in scales.values()), scales
