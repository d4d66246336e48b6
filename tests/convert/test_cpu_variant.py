"""The ONNX Runtime CPU variant of the INT8 model (uint8 activations) and the host ISA record."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge_t2i.convert.mixed import INT8_CPU_FILE, INT8_FILE
from edge_t2i.convert.quantize import count_qdq, to_u8_activations
from edge_t2i.errors import ConvertError, PackError
from edge_t2i.runtime import cpu, load
from edge_t2i.runtime.manifest import read_manifest


def _zero_point_types(path) -> dict[str, set]:  # noqa: ANN001
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    kinds: dict[str, set] = {"activation": set(), "weight": set()}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear":
            kind = "activation" if producer.get(n.input[0]) == "QuantizeLinear" else "weight"
            kinds[kind].add(inits[n.input[2]].dtype)
    return kinds


def test_every_conv_and_gemm_is_int8_by_default(pack_dir):
    q = count_qdq(pack_dir / INT8_FILE)
    assert q["Conv"] > 0 and q["Gemm"] > 0
    from edge_t2i.convert.graph import output_layers

    kept = output_layers(pack_dir / "generator.fp32.onnx")  # the layers that write the image, in float by rule
    assert q["Conv_with_qdq_inputs"] == q["Conv"] - sum("Conv" in n for n in kept)
    assert q["Gemm_with_qdq_inputs"] == q["Gemm"] - sum("Gemm" in n for n in kept)


def test_u8_variant_is_the_same_function_with_uint8_activations(pack_dir, tmp_path):
    s8, u8 = pack_dir / INT8_FILE, tmp_path / "u8.onnx"
    converted = to_u8_activations(s8, u8)
    assert converted == count_qdq(s8)["QuantizeLinear"] > 0
    weights = {np.dtype(np.int8), np.dtype(np.int32)}  # weights int8, biases int32
    assert _zero_point_types(s8) == {"activation": {np.dtype(np.int8)}, "weight": weights}
    assert _zero_point_types(u8) == {"activation": {np.dtype(np.uint8)}, "weight": weights}
    used = {i for n in onnx.load(str(u8)).graph.node for i in n.input}
    assert {t.name for t in onnx.load(str(u8)).graph.initializer} <= used  # the int8 zero points are gone
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    bank = read_manifest(pack_dir)
    feeds = {"z": rng.standard_normal((4, bank.nz), dtype=np.float32),
             "embedding": rng.standard_normal((4, bank.embedding_dim), dtype=np.float32) * 0.05}
    a = ort.InferenceSession(str(s8), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    b = ort.InferenceSession(str(u8), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    # the same grid, value for value; only kernels may round differently (a few codes of 255 at most)
    assert np.abs(a - b).max() <= 2 * 4 / 255


def test_u8_refuses_a_model_whose_zero_points_are_not_int8(pack_dir, tmp_path):
    u8 = tmp_path / "u8.onnx"
    to_u8_activations(pack_dir / INT8_FILE, u8)
    with pytest.raises(ConvertError, match="expected int8"):
        to_u8_activations(u8, tmp_path / "again.onnx")


def test_pack_ships_the_variant_with_its_gate_and_the_host_isa(pack_dir):
    raw = json.loads((pack_dir / "manifest.json").read_text())
    v = raw["cpu_variants"]["int8"]
    assert v["file"] == INT8_CPU_FILE and set(v["requires_any"]) == set(cpu.VNNI)
    assert v["file"] in raw["files"] and "psnr_db" in v["gate"]
    assert raw["host"]["int8_isa"] == cpu.int8_isa() and raw["host"]["cpu"]
    assert read_manifest(pack_dir).cpu_variants["int8"].file == INT8_CPU_FILE


@pytest.mark.parametrize("flags,expected", [({"avx2", "avx512_vnni"}, INT8_CPU_FILE), ({"avx2"}, INT8_FILE),
                                            ({"avx_vnni"}, INT8_CPU_FILE), (set(), INT8_FILE)])
def test_runtime_runs_the_variant_only_where_the_cpu_has_vnni(pack_dir, monkeypatch, flags, expected):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    with load(pack_dir, backend="onnxruntime", precision="int8", threads=1) as g:
        assert g.backend.label == expected
        assert ("this CPU has" in g.choice.reason) is (expected == INT8_CPU_FILE)
        assert g.generate(g.bank.embeddings[:1], seeds=[0]).shape[0] == 1


def _edited_pack(pack_dir, tmp_path, edit):  # noqa: ANN001, ANN202
    dst = tmp_path / "pack"
    shutil.copytree(pack_dir, dst)
    raw = json.loads((dst / "manifest.json").read_text())
    edit(raw)
    (dst / "manifest.json").write_text(json.dumps(raw))
    return dst


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["cpu_variants"].update(int8={"file": "x.onnx", "requires_any": ["avx512_vnni"]}), "lists no sha256"),
    (lambda m: m["cpu_variants"]["int8"].update(requires_any=[]), "requires_any"),
    (lambda m: m["cpu_variants"]["int8"].update(requires_any=["a b"]), "requires_any"),
    (lambda m: m["cpu_variants"].update(fp16=m["cpu_variants"]["int8"]), "no fp16 model"),
    (lambda m: m.update(cpu_variants=[1]), "expected an object"),
])
def test_bad_cpu_variant_records_are_refused(pack_dir, tmp_path, edit, match):
    with pytest.raises(PackError, match=match):
        read_manifest(_edited_pack(pack_dir, tmp_path, edit))


def test_int8_isa_names_the_strongest_extension():
    assert cpu.int8_isa(frozenset({"avx2", "avx512f", "avx512_vnni"})) == "avx512_vnni"
    assert cpu.int8_isa(frozenset({"avx2"})) == "avx2"
    assert cpu.int8_isa(frozenset({"avx2", "avx_vnni"})) == "avx_vnni"
