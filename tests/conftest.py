"""Shared fixtures: a tiny generator checkpoint and a tiny pack built from it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The runtime's device checks and measurements are cached per pack and device (runtime/cache.py): one cache for
# the whole session, outside the user's home.
os.environ.setdefault("EDGE_T2I_CACHE", tempfile.mkdtemp(prefix="edge-t2i-test-cache-"))
ROOT = Path(__file__).resolve().parents[1]

BANK_PROMPTS = [
    "a small red circle in the top-left", "a large blue star in the center", "a small green square in the bottom",
    "a large yellow triangle in the right", "a small cyan hexagon in the top", "a large pink cross in the left",
    "a large orange circle in the bottom-right", "a small purple star in the top-right",
]
CALIB_PROMPTS = [
    "a tiny crimson disc at the top left corner", "there is a big azure star in the middle",
    "a little emerald box at the bottom", "huge golden triangle right side on a gray background",
    "a small turquoise hex upper middle", "a big rose plus sign in the left side",
    "a large tangerine circle, huge, lower right", "a lilac starlet, tiny, upper right",
]
EVAL_PROMPTS = [
    "a small red square in the center", "a large green star in the top-left",
    "a small blue circle in the bottom-right", "a large purple hexagon in the top",
]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_checkpoint(folder: Path, ngf: int = 8, seed: int = 0) -> Path:
    """A random-weight generator whose fusion layers respond to text (not the identity init)."""
    import torch

    from edge_t2i.models.checkpoint import save_generator
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG

    torch.manual_seed(seed)
    g = NetG(ModelConfig(resolution=32, ngf=ngf, ndf=ngf, noise_in_fusion=4))  # like the shipped one
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "fc2.weight" in name:
                p.normal_(0, 0.05)
    return save_generator(folder, g.eval(), {"steps": 0, "dataset_kind": "shapes"})


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="session")
def prompt_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("prompts")
    return {"bank": write_lines(d / "bank.txt", BANK_PROMPTS), "calib": write_lines(d / "calib.txt", CALIB_PROMPTS),
            "eval": write_lines(d / "eval.txt", EVAL_PROMPTS)}


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory: pytest.TempPathFactory, checkpoint_dir: Path, prompt_files: dict[str, Path]) -> Path:
    from edge_t2i.convert.gate import GateConfig
    from edge_t2i.convert.pack import ConvertOptions, convert_checkpoint

    out = tmp_path_factory.mktemp("pack") / "tiny"
    opts = ConvertOptions(prompts=str(prompt_files["bank"]), calib_prompts=str(prompt_files["calib"]), with_encoder=False,
                          eval_prompts=str(prompt_files["eval"]), calib_samples=32, gate=False,
                          gate_config=GateConfig(seeds_per_prompt=2))
    convert_checkpoint(checkpoint_dir, out, opts, quiet=True)
    return out


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def text_pack_dir(tmp_path_factory: pytest.TempPathFactory, pack_dir: Path) -> Path:
    """The tiny pack with a text path: the INT8 text encoder and tokenizer, a phrase reader (random weights, windows
    of 2 words) and the descriptive lexicon in its bank (convert/lexicon.py), its manifest's sha256s and sizes updated."""
    import json
    import shutil

    import torch

    from edge_t2i._io import sha256_file
    from edge_t2i.convert.encoder import export_phrase_reader, export_text_encoder
    from edge_t2i.convert.lexicon import lexicon_for
    from edge_t2i.models.checkpoint import save_generator
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG
    from edge_t2i.runtime.bank import PromptBank

    work = tmp_path_factory.mktemp("text-pack")
    pack = shutil.copytree(pack_dir, work / "pack")
    files = export_text_encoder(pack)
    torch.manual_seed(0)
    reader_g = NetG(ModelConfig(resolution=32, ngf=4, text_norm=True, text_adapter=(3, 2), phrase_reader=2))
    with torch.no_grad():
        reader_g.text_adapter.table.normal_()
        for p in reader_g.phrase_reader.parameters():
            p.normal_(0, 0.5)
    files["reader"] = export_phrase_reader(save_generator(work / "reader-ckpt", reader_g.eval()), pack)
    bank = PromptBank.load(pack / "bank.safetensors")
    lexicon = lexicon_for("descriptive", bank.texts, True)[0]
    PromptBank(bank.texts, bank.embeddings, bank.encoder_name, None, lexicon).save(pack / "bank.safetensors")
    m = json.loads((pack / "manifest.json").read_text())
    m["encoder"], m["model"]["phrase_reader"] = files, 2
    for name in (*files.values(), "bank.safetensors"):
        m["files"][name] = {"sha256": sha256_file(pack / name), "bytes": (pack / name).stat().st_size}
    (pack / "manifest.json").write_text(json.dumps(m))
    return pack
