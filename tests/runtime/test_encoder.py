"""The on-device text encoder (INT8 ONNX + tokenizers) and the bank's `encode` policy."""

import json
import shutil

import numpy as np
import pytest

from edge_t2i._io import sha256_file
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
