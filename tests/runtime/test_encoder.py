"""The on-device text encoder (INT8 ONNX + tokenizers) and the bank's `encode` policy."""

import json
import shutil

import numpy as np
import pytest

from edge_t2i._io import sha256_file
from edge_t2i.errors import PackError
from edge_t2i.runtime import load
from edge_t2i.runtime.encoder import OnnxTextEncoder

pytestmark = pytest.mark.slow  # exporting the text encoder to ONNX takes a few seconds


@pytest.fixture(scope="module")
def encoder_files(tmp_path_factory):
    from edge_t2i.convert.encoder import export_text_encoder

    out = tmp_path_factory.mktemp("encoder")
    return out, export_text_encoder(out)


def test_onnx_encoder_agrees_with_the_training_encoder(encoder_files):
    from edge_t2i.models.text_encoder import encode

    out, files = encoder_files
    enc = OnnxTextEncoder(out / files["model"], out / files["tokenizer"])
    texts = ["a small red circle in the top-left", "there is a huge blue star at the bottom right corner"]
    cos = (enc.encode(texts) * encode(texts)).sum(1)
    assert cos.min() > 0.98, cos


def test_pack_with_encoder_encodes_prompts_missing_from_the_bank(pack_dir, encoder_files, tmp_path):
    out, files = encoder_files
    pack = shutil.copytree(pack_dir, tmp_path / "pack")
    for name in files.values():
        shutil.copy(out / name, pack / name)
    m = json.loads((pack / "manifest.json").read_text())
    m["encoder"] = files
    m["files"].update({n: {"sha256": sha256_file(pack / n), "bytes": (pack / n).stat().st_size} for n in files.values()})
    (pack / "manifest.json").write_text(json.dumps(m))
    with load(pack) as g:
        new = "a giant violet hexagon located at the northeast"
        img = g.generate(new, seeds=[3])  # default policy: encode, since the pack has an encoder
        assert img.shape == (1, 32, 32, 3)
        emb = g.bank.lookup(new, "encode")
        assert np.array_equal(img, g.generate(emb, seeds=[3]))
        match = g.bank.nearest(new)
        assert 0.3 < match.similarity < 1.0 and not match.exact


def test_pack_with_a_phrase_reader_reads_prompts_missing_from_the_bank(pack_dir, encoder_files, tmp_path):
    import torch

    from edge_t2i.convert.encoder import export_phrase_reader
    from edge_t2i.models.checkpoint import save_generator
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG
    from edge_t2i.runtime.reader import PhraseReadingEncoder

    torch.manual_seed(0)
    reader_g = NetG(ModelConfig(resolution=32, ngf=4, text_norm=True, text_adapter=(3, 2), phrase_reader=2))
    with torch.no_grad():
        reader_g.text_adapter.table.normal_()
        for p in reader_g.phrase_reader.parameters():
            p.normal_(0, 0.5)
    export_phrase_reader(save_generator(tmp_path / "ckpt", reader_g.eval()), tmp_path)
    out, files = encoder_files
    pack = shutil.copytree(pack_dir, tmp_path / "pack")
    files = {**files, "reader": "reader.onnx"}
    for name in files.values():
        shutil.copy((tmp_path if name == "reader.onnx" else out) / name, pack / name)
    m = json.loads((pack / "manifest.json").read_text())
    m["encoder"], m["model"]["phrase_reader"] = files, 2
    m["files"].update({n: {"sha256": sha256_file(pack / n), "bytes": (pack / n).stat().st_size} for n in files.values()})
    (pack / "manifest.json").write_text(json.dumps(m))
    new = ["a giant violet hexagon located at the northeast", "draw a tiny red star"]
    with load(pack) as g:
        reading = PhraseReadingEncoder(OnnxTextEncoder(out / files["model"], out / files["tokenizer"]),
                                       pack / "reader.onnx", 2)
        emb = reading.encode(new)
        assert np.array_equal(g.generate(new, seeds=[3, 4]), g.generate(emb, seeds=[3, 4]))
        assert not np.allclose(emb, g.bank.encoder.encoder.encode(new))  # read, not the sentence embedding
    (pack / "reader.onnx").write_bytes(b"altered")
    with pytest.raises(PackError, match="reader.onnx is 7 bytes, the manifest declares"):  # from its size alone
        load(pack).generate(new[0], seeds=[1])
    size = m["files"]["reader.onnx"]["bytes"]
    (pack / "reader.onnx").write_bytes(b"x" * size)  # the declared size, other bytes
    with pytest.raises(PackError, match="sha256"):
        load(pack).generate(new[0], seeds=[1])
