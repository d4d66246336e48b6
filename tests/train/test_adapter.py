"""The text adapter: an attribute bottleneck trained alone in front of a frozen generator."""

import hashlib
import itertools

import numpy as np
import pytest
import torch

from edge_t2i.data.vocab import HELDOUT_PAIRS
from edge_t2i.errors import CheckpointError, OutputError
from edge_t2i.models.checkpoint import load_generator, save_generator
from edge_t2i.models.config import ModelConfig
from edge_t2i.models.networks import NetG, TextAdapter
from edge_t2i.train import adapter as adapter_mod


def test_a_confident_adapter_returns_the_row_of_the_predicted_tuple():
    torch.manual_seed(0)
    a = TextAdapter(16, (3, 2, 4))
    a.table.copy_(torch.randn(24, 16))
    with torch.no_grad():
        a.heads.weight.zero_()
        a.heads.bias.copy_(torch.tensor([0, 9, 0, 9, 0, 0, 0, 0, 9.0]))  # group picks: 1, 0, 3
    out = a(torch.randn(5, 16))
    row = (1 * 2 + 0) * 4 + 3  # itertools.product order: first group slowest
    assert torch.allclose(out, a.table[row].expand(5, -1), atol=1e-5)


def test_the_tuple_order_matches_itertools_product():
    groups = (2, 3, 2)
    a = TextAdapter(4, groups)
    a.table.copy_(torch.arange(12, dtype=torch.float32)[:, None].expand(-1, 4))
    for i, (x, y, z) in enumerate(itertools.product(*(range(n) for n in groups))):
        bias = torch.zeros(7)
        bias[[x, 2 + y, 5 + z]] = 20.0
        with torch.no_grad():
            a.heads.weight.zero_()
            a.heads.bias.copy_(bias)
        assert a(torch.zeros(1, 4))[0, 0].item() == pytest.approx(i, abs=1e-3)


def _fake_encode(texts):  # deterministic "embeddings": attribute words dominate, as in a real encoder
    out = np.zeros((len(texts), 384), np.float32)
    for i, t in enumerate(texts):
        for w in t.replace(",", " ").split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 384] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


@pytest.fixture
def normed_checkpoint(tmp_path):
    torch.manual_seed(0)
    g = NetG(ModelConfig(resolution=32, ngf=4, ndf=4, text_norm=True))
    g.set_text_stats(torch.from_numpy(_fake_encode([f"a red star {i}" for i in range(64)])))
    return save_generator(tmp_path / "ckpt", g.eval(), {"steps": 1})


def test_adapt_keeps_the_gan_and_learns_the_attributes(normed_checkpoint, tmp_path, monkeypatch):
    from edge_t2i.models import text_encoder

    monkeypatch.setattr(text_encoder, "encode", _fake_encode)
    record = adapter_mod.adapt_checkpoint(normed_checkpoint, tmp_path / "out", steps=300, augment_per_tuple=1,
                                          reader_steps=60)
    assert set(record["val_accuracy"]) == {"shape", "color", "size", "position", "background"}
    assert record["val_accuracy"]["color"] > 0.9  # a word-hash encoder makes colors easy
    base, adapted = load_generator(normed_checkpoint), load_generator(tmp_path / "out")
    assert adapted.config.text_adapter == (6, 8, 2, 9, 4) and adapted.config.phrase_reader == 4
    assert record["reader_val_accuracy"]["color"] > 0.9 and 0.0 <= record["table_roundtrip"] <= 1.0
    for name, tensor in base.state_dict().items():
        assert torch.equal(tensor, adapted.state_dict()[name]), name  # the GAN is untouched
    assert not any((s, c) == tuple(p) for s, c, *_ in adapter_mod.attribute_tuples() for p in HELDOUT_PAIRS)


def test_adapt_refuses_its_input_as_output_and_a_generator_without_text_norm(normed_checkpoint, tmp_path):
    with pytest.raises(OutputError):
        adapter_mod.adapt_checkpoint(normed_checkpoint, normed_checkpoint)
    plain = save_generator(tmp_path / "plain", NetG(ModelConfig(resolution=32, ngf=4)).eval())
    with pytest.raises(CheckpointError, match="text_norm"):
        adapter_mod.adapt_checkpoint(plain, tmp_path / "o2")


@pytest.mark.parametrize("bad", [[1], [3] * 17, [True, 3], "6,8"])
def test_config_refuses_bad_adapter_groups(bad):
    with pytest.raises(CheckpointError, match="text_adapter"):
        ModelConfig(text_adapter=bad)


def test_adapted_generator_exports_with_parity(normed_checkpoint, tmp_path, monkeypatch):
    from edge_t2i.convert.export import export_onnx
    from edge_t2i.models import text_encoder

    monkeypatch.setattr(text_encoder, "encode", _fake_encode)
    adapter_mod.adapt_checkpoint(normed_checkpoint, tmp_path / "out", steps=20, augment_per_tuple=1, reader_steps=5)
    result = export_onnx(tmp_path / "out", tmp_path / "g.onnx")
    assert result.max_abs_error < 1e-4


def test_the_adapter_classifier_stays_float_when_quantizing(normed_checkpoint, tmp_path, monkeypatch):
    import onnx

    from edge_t2i import calib
    from edge_t2i.convert.export import export_onnx
    from edge_t2i.convert.quantize import float_by_design, quantizable_nodes, quantize_int8
    from edge_t2i.models import text_encoder

    monkeypatch.setattr(text_encoder, "encode", _fake_encode)
    adapter_mod.adapt_checkpoint(normed_checkpoint, tmp_path / "out", steps=20, augment_per_tuple=1, reader_steps=5)
    fp32 = export_onnx(tmp_path / "out", tmp_path / "g.onnx").path
    design = float_by_design(fp32)
    assert design == ["/text_adapter/heads/Gemm"] and not set(design) & set(quantizable_nodes(fp32))
    data = calib.calibration_batches(_fake_encode(["a red star", "a blue box"]), 16, 100)
    graph = onnx.load(str(quantize_int8(fp32, data, tmp_path / "q.onnx"))).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    gemms = {n.name: n for n in graph.node if n.op_type == "Gemm"}
    assert producer.get(gemms["/text_adapter/heads/Gemm"].input[1]) != "DequantizeLinear"
    assert producer.get(gemms["/fc/Gemm"].input[1]) == "DequantizeLinear"


def test_config_refuses_an_adapter_table_too_large_to_hold():
    with pytest.raises(CheckpointError, match="attribute tuples"):
        ModelConfig(text_adapter=[1000, 1000, 2])
