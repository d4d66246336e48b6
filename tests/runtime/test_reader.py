"""The phrase reader: word windows, attention over them, the exported reader.onnx and the runtime path."""

import hashlib

import numpy as np
import pytest
import torch

from edge_t2i.errors import CheckpointError, PackError
from edge_t2i.models.checkpoint import save_generator
from edge_t2i.models.config import ModelConfig
from edge_t2i.models.networks import NetG, PhraseReader
from edge_t2i.runtime.reader import PhraseReadingEncoder, phrase_windows


def fake_encode(texts):  # word-hash "embeddings", L2-normalised like the real encoder's
    out = np.zeros((len(texts), 384), np.float32)
    for i, t in enumerate(texts):
        for w in t.split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 384] += 1.0
        out[i, 0] += 1e-3  # the empty text
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class FakeEncoder:
    name = "fake"

    def __init__(self):
        self.calls = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return fake_encode(texts)


def test_phrase_windows():
    assert phrase_windows("Draw a RED star, top-left!", 2) == [
        "draw", "a", "red", "star", "top-left", "draw a", "a red", "red star", "star top-left"]
    assert phrase_windows("it's big", 3) == ["it's", "big", "it's big"]
    assert phrase_windows("  ,, ", 4) == [""]
    assert len(phrase_windows("one two three four five", 4)) == 5 + 4 + 3 + 2
    # the bank's normalisation first: full-width letters, zero-width characters, case folding
    assert phrase_windows("ＲＥＤ re\u200bd STAR", 1) == ["red", "red", "star"]


def test_attention_reads_the_window_that_carries_the_attribute():
    torch.manual_seed(0)
    reader = PhraseReader(8, (3,))
    key = torch.zeros(8)
    key[0] = 1.0  # the window that says which class
    with torch.no_grad():
        reader.attention.weight.zero_()
        reader.attention.weight[0, 0] = 1.0  # attend to windows with feature 0
        reader.classify.weight.zero_()
        reader.classify.bias.zero_()
        reader.classify.weight[2, 0] = 1.0  # ... which say class 2
        reader.classify.weight[1, 1] = 1.0  # filler windows (feature 1) say class 1
    filler = torch.zeros(6, 8)
    filler[:, 1] = 1.0
    assert reader.index(torch.cat([filler, key[None]])).item() == 2  # one key window among six fillers
    assert reader.index(filler).item() == 1


def _reader_checkpoint(tmp_path):
    torch.manual_seed(0)
    g = NetG(ModelConfig(resolution=32, ngf=4, text_norm=True, text_adapter=(3, 2), phrase_reader=3))
    g.set_text_stats(torch.from_numpy(fake_encode([f"a red star {i}" for i in range(64)])))
    with torch.no_grad():
        g.text_adapter.table.copy_(torch.randn(6, 384))
        g.text_adapter.heads.weight.copy_(g.text_adapter.table[[0, 3, 5, 1, 4]] * 0.1)  # rough but deterministic
        for p in g.phrase_reader.parameters():
            p.normal_(0, 0.5)
    return g, save_generator(tmp_path / "ckpt", g.eval())


def test_read_gives_the_raw_embedding_of_a_table_row(tmp_path):
    g, _ = _reader_checkpoint(tmp_path)
    windows = torch.from_numpy(fake_encode(phrase_windows("please draw a red star", 3)))
    raw = g.read(windows)
    row = g.text_adapter.table[g.phrase_reader.index(windows)]
    assert torch.allclose(raw * g.text_scale + g.text_shift, row[None], atol=1e-4)
    with pytest.raises(ValueError, match="phrase reader"):
        NetG(ModelConfig(resolution=32, ngf=4)).read(windows)
    with pytest.raises(CheckpointError, match="phrase_reader"):
        ModelConfig(phrase_reader=4)  # without an adapter


def test_exported_reader_matches_torch_through_the_runtime_encoder(tmp_path, monkeypatch):
    from edge_t2i.convert.encoder import export_phrase_reader
    from edge_t2i.models import text_encoder

    g, ckpt = _reader_checkpoint(tmp_path)
    assert export_phrase_reader(ckpt, tmp_path) == "reader.onnx"
    prompts = ["please draw a red star", "a blue box on the left", "x"]
    encoder = FakeEncoder()
    runtime = PhraseReadingEncoder(encoder, tmp_path / "reader.onnx", 3).encode(prompts)
    assert len(encoder.calls) == 1 and len(set(encoder.calls[0])) == len(encoder.calls[0])  # unique windows, one batch
    monkeypatch.setattr(text_encoder, "encode", fake_encode)
    reference = text_encoder.encode_for(g, prompts)
    assert runtime.shape == (3, 384) and np.abs(runtime - reference).max() < 1e-4
    assert len({tuple(np.round(r, 4)) for r in runtime}) >= 2  # the prompts read different captions
    plain = NetG(ModelConfig(resolution=32, ngf=4))
    save_generator(tmp_path / "plain", plain)
    assert export_phrase_reader(tmp_path / "plain", tmp_path / "p") is None
    assert np.array_equal(text_encoder.encode_for(plain, prompts), fake_encode(prompts))


def test_a_broken_reader_file_is_a_pack_error(tmp_path):
    (tmp_path / "reader.onnx").write_bytes(b"not onnx")
    with pytest.raises(PackError, match="phrase reader"):
        PhraseReadingEncoder(FakeEncoder(), tmp_path / "reader.onnx", 4).encode(["a red star"])
    with pytest.raises(PackError, match="1..16 words"):
        PhraseReadingEncoder(FakeEncoder(), tmp_path / "reader.onnx", 0)
