"""Untrusted inputs: random bytes and structures only ever raise the package's own errors."""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_t2i.data.captions import parse_caption
from edge_t2i.data.prompts import normalize_prompt
from edge_t2i.errors import CheckpointError, EdgeT2IError, InputError, PackError
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import parse_manifest

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)


@FUZZ
@given(st.binary(max_size=2048))
def test_bank_reader_on_random_bytes(tmp_path, data):
    p = tmp_path / "bank.npz"
    p.write_bytes(data)
    with pytest.raises(PackError):
        PromptBank.load(p)


@FUZZ
@given(st.dictionaries(st.sampled_from(["texts", "embeddings", "encoder", "other"]),
                       st.sampled_from([np.zeros(3), np.array(["a", "b"]), np.zeros((2, 4), np.float16),
                                        np.zeros((2, 2, 2)), np.array([np.nan, 1.0]), np.array(5)]), max_size=4))
def test_bank_reader_on_random_npz_structures(tmp_path, arrays):
    p = tmp_path / "bank.npz"
    with open(p, "wb") as fh:
        np.savez(fh, **arrays)
    try:
        bank = PromptBank.load(p)
    except PackError:
        return
    assert len(bank.texts) == bank.embeddings.shape[0]


def test_bank_with_pickled_object_array_is_refused(tmp_path):
    p = tmp_path / "bank.npz"
    with open(p, "wb") as fh:
        np.savez(fh, texts=np.array([{"evil": 1}], dtype=object), embeddings=np.zeros((1, 4), np.float32))
    with pytest.raises(PackError):
        PromptBank.load(p)


@FUZZ
@given(json_values)
def test_manifest_parser_on_random_json(raw):
    try:
        parse_manifest(Path("/nonexistent"), raw)
    except PackError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["schema_version", "model", "files", "io", "models", "bank", "engines",
                                        "encoder"]), json_values, max_size=8))
def test_manifest_parser_on_manifest_shaped_json(raw):
    try:
        parse_manifest(Path("/nonexistent"), raw)
    except PackError:
        pass


@FUZZ
@given(st.text(max_size=200))
def test_prompt_normalisation_is_idempotent_and_never_crashes(text):
    once = normalize_prompt(text)
    assert normalize_prompt(once) == once
    assert once == once.strip() and "  " not in once


def test_normalise_rejects_non_strings():
    with pytest.raises(InputError):
        normalize_prompt(b"bytes")  # type: ignore[arg-type]


@FUZZ
@given(st.text(max_size=300))
def test_caption_parser_on_random_text(text):
    cap = parse_caption(text)
    assert cap.shape is None or isinstance(cap.shape, str)


def test_caption_parser_rejects_non_strings():
    with pytest.raises(EdgeT2IError):
        parse_caption(None)  # type: ignore[arg-type]


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_checkpoint_with_code_is_refused(tmp_path, checkpoint_dir, capsys):
    import shutil

    folder = tmp_path / "ck"
    shutil.copytree(checkpoint_dir, folder)
    (folder / "generator.safetensors").unlink()
    (folder / "generator.pt").write_bytes(pickle.dumps({"weights": Evil()}))
    with pytest.raises(CheckpointError, match="refusing"):
        from edge_t2i.models.checkpoint import load_generator

        load_generator(folder)
    assert "pwned" not in capsys.readouterr().out


def test_plain_torch_state_dict_loads_with_weights_only(tmp_path, checkpoint_dir):
    import shutil

    import torch

    from edge_t2i.models.checkpoint import load_generator

    folder = tmp_path / "ck"
    shutil.copytree(checkpoint_dir, folder)
    state = load_generator(checkpoint_dir).state_dict()
    (folder / "generator.safetensors").unlink()
    torch.save(state, folder / "generator.pt")
    assert load_generator(folder).config.resolution == 32


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"not safetensors at all"])
def test_truncated_or_corrupt_weights(tmp_path, checkpoint_dir, content):
    import shutil

    from edge_t2i.models.checkpoint import load_generator

    folder = tmp_path / "ck"
    shutil.copytree(checkpoint_dir, folder)
    (folder / "generator.safetensors").write_bytes(content)
    with pytest.raises(CheckpointError):
        load_generator(folder)


def test_half_a_real_weights_file_is_refused(tmp_path, checkpoint_dir):
    import shutil

    from edge_t2i.models.checkpoint import load_generator

    folder = tmp_path / "ck"
    shutil.copytree(checkpoint_dir, folder)
    data = (folder / "generator.safetensors").read_bytes()
    (folder / "generator.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_generator(folder)


def test_zip_bomb_like_npz_is_only_a_pack_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("texts.npy", b"\x93NUMPY garbage")
    (tmp_path / "bank.npz").write_bytes(buf.getvalue())
    with pytest.raises(PackError):
        PromptBank.load(tmp_path / "bank.npz")


def test_json_manifest_that_is_not_an_object(tmp_path):
    from edge_t2i.runtime.manifest import read_manifest

    (tmp_path / "manifest.json").write_text(json.dumps([1, 2, 3]))
    with pytest.raises(PackError, match="JSON object"):
        read_manifest(tmp_path)
