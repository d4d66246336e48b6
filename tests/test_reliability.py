"""Untrusted inputs: random bytes and structures only ever raise the package's own errors."""

import copy
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_t2i import _io
from edge_t2i.data import vocab
from edge_t2i.data.captions import SYNONYMS, parse_caption
from edge_t2i.data.prompts import normalize_prompt
from edge_t2i.errors import CheckpointError, EdgeT2IError, InputError, PackError
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import parse_manifest, read_manifest

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


@pytest.fixture(scope="module")
def real_bank(pack_dir) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of the tiny pack's bank, as `convert` wrote them."""
    name = json.loads((pack_dir / "manifest.json").read_text())["bank"]
    return _io.read_safetensors(pack_dir / name)


def _load_bank_or_pack_error(path: Path) -> PromptBank | None:
    """PromptBank.load(path), or None when it refuses the file; any other exception fails the test.
    Whatever loads must be a consistent bank: one finite float32 row per text, and its texts are found."""
    try:
        bank = PromptBank.load(path)
    except PackError:
        return None
    assert len(bank.texts) == bank.embeddings.shape[0] and bank.embeddings.ndim == 2
    assert bank.embeddings.dtype == np.float32 and np.isfinite(bank.embeddings).all()
    for text in bank.texts[:3]:
        assert text in bank and bank.exact(text) is not None
    return bank


def test_the_unmutated_bank_loads(pack_dir, real_bank, tmp_path):
    tensors, meta = real_bank
    _io.write_safetensors(tmp_path / "bank.safetensors", tensors, meta)
    bank = _load_bank_or_pack_error(tmp_path / "bank.safetensors")
    assert bank is not None and bank.texts == json.loads(meta["prompts"]) and bank.encoder_name == meta["encoder"]
    assert np.array_equal(bank.embeddings, tensors["embeddings"].astype(np.float32))
    original = PromptBank.load(pack_dir / json.loads((pack_dir / "manifest.json").read_text())["bank"])
    assert original.texts == bank.texts and np.array_equal(original.embeddings, bank.embeddings)


def _tensor_values(emb: np.ndarray):
    n, dim = emb.shape

    def one_changed(i: int, j: int, value: float) -> np.ndarray:
        a = emb.copy()
        a[i % n, j % dim] = value
        return a

    fixed = st.sampled_from([
        np.zeros(3, np.float16), np.zeros((n, dim), np.float32), np.zeros((n + 1, dim), np.float16),
        np.zeros((n - 1, dim), np.float16), np.zeros((n, dim + 1), np.float16), np.zeros((n, dim, 1), np.float32),
        np.zeros(dim, np.float32), np.zeros((0, dim), np.float32), np.zeros((n, 0), np.float16),
        np.zeros((), np.float32), np.full((n, dim), np.nan, np.float32), np.full((n, dim), np.inf, np.float16),
    ])
    return fixed | st.builds(one_changed, st.integers(0, n - 1), st.integers(0, dim - 1),
                             st.sampled_from([np.nan, np.inf, -np.inf, 65504.0, 1e-8, 0.0]))


META_VALUES = st.text(max_size=30) | st.sampled_from([
    "", "null", "[]", "{}", "[1, 2]", '["a"]', '["a", null]', "[" * 50 + "]" * 50, json.dumps(["x"] * 10_000),
    "edge-t2i bank v2", "nfkc-v0", "0", "-1", "384", "99999999999999999999", "1e3", " 384", "384.0"])


@FUZZ
@given(data=st.data())
def test_bank_reader_on_a_valid_bank_with_one_part_changed(tmp_path, real_bank, data):
    """One change to a real bank.safetensors: a metadata value (changed, removed or added), the embeddings
    tensor (shape, dtype, NaN/inf, removed, or a second tensor), or its bytes (truncated, one flipped):
    only PackError comes out, and whatever loads is a consistent bank."""
    tensors, meta = dict(real_bank[0]), dict(real_bank[1])
    part = data.draw(st.sampled_from(["meta", "tensor", "bytes"]), label="part")
    harmless = False
    if part == "meta":
        key = data.draw(st.sampled_from([*meta, "extra"]), label="key")
        value = data.draw(st.none() | META_VALUES, label="value")
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
        harmless = key in ("encoder", "extra")
    elif part == "tensor":
        change = data.draw(st.sampled_from(["replace", "remove", "add"]), label="change")
        if change == "replace":
            tensors["embeddings"] = data.draw(_tensor_values(tensors["embeddings"]), label="tensor")
        elif change == "remove":
            del tensors["embeddings"]
        else:
            tensors["extra"] = data.draw(_tensor_values(tensors["embeddings"]), label="tensor")  # refused: a bank
            # holds one tensor (docs/pack-spec.md), so its data can be streamed and sized from the header alone
    p = tmp_path / "bank.safetensors"
    _io.write_safetensors(p, tensors, meta)
    if part == "bytes":
        raw = bytearray(p.read_bytes())
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        if data.draw(st.booleans(), label="truncate"):
            del raw[at:]
        else:
            raw[at] ^= data.draw(st.integers(1, 255), label="xor")
        p.write_bytes(bytes(raw))
    bank = _load_bank_or_pack_error(p)
    if harmless:  # the other name, an extra key or tensor: still the same prompts
        assert bank is not None and bank.texts == json.loads(real_bank[1]["prompts"])


@FUZZ
@given(data=st.data())
def test_legacy_npz_bank_reader_with_one_array_changed(tmp_path, real_bank, data):
    """The schema-1 bank.npz, built from the real bank, with one array changed, removed or added."""
    emb = real_bank[0]["embeddings"]
    texts = np.array(json.loads(real_bank[1]["prompts"]))
    arrays = {"texts": texts, "embeddings": emb, "encoder": np.array(real_bank[1]["encoder"]), "dim": np.array(emb.shape[1])}
    key = data.draw(st.sampled_from([*arrays, "extra"]), label="key")
    value = data.draw(st.none() | _tensor_values(emb) | st.sampled_from([
        np.zeros((len(texts), emb.shape[1]), np.float64), np.zeros((len(texts), emb.shape[1]), np.int32),
        np.array(5), np.array("text"), texts[:-1], texts.reshape(1, -1), np.array([t.encode() for t in texts]),
        np.array(["a" * 5000] * len(texts)), np.array([True] * len(texts))]), label="value")
    if value is None:
        arrays.pop(key, None)
    else:
        arrays[key] = value
    p = tmp_path / "bank.npz"
    with open(p, "wb") as fh:
        np.savez(fh, **arrays)
    bank = _load_bank_or_pack_error(p)
    if key in ("encoder", "dim", "extra"):
        assert bank is not None and bank.texts == texts.tolist()


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


def _paths(obj, prefix=()):
    """Every location in a JSON value: () for the root, then dict keys and list indices."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _is_file_name_location(raw: dict, path: tuple) -> bool:
    return (len(path) == 2 and path[0] in ("models", "encoder")) or path == ("bank",) or \
        (len(path) == 3 and path[0] == "engines" and path[2] == "file")


ESCAPES = ["../{}", "/{}", "{}/..", "sub/{}", "..", "{}\x00", "C:\\{}", "./{}", "~/{}"]
ODD_VALUES = [None, True, 0, -1, 4097, 2**63, -(10**30), 10**30, 1e308, "", "x" * 10_000, [], {}, [1] * 9, "batch"]


@pytest.mark.parametrize("key,value", [("inputs", True), ("outputs", 5), ("inputs", 1.5)])
def test_io_inputs_that_are_not_lists_are_a_pack_error(real_manifest, key, value):
    raw = copy.deepcopy(real_manifest)
    raw["io"][key] = value
    with pytest.raises(PackError):
        parse_manifest(Path("/nonexistent"), raw)


@pytest.fixture(scope="module")
def real_manifest(pack_dir) -> dict:
    return json.loads((pack_dir / "manifest.json").read_text())


def test_the_unmutated_manifest_parses(pack_dir, real_manifest):
    m = parse_manifest(pack_dir, real_manifest)
    assert m.models and m.bank == real_manifest["bank"] and (m.nz, m.embedding_dim, m.resolution) == (100, 384, 32)
    assert read_manifest(pack_dir).files == m.files


@FUZZ
@given(data=st.data())
def test_manifest_parser_on_a_valid_manifest_with_one_field_changed(pack_dir, real_manifest, data):
    """One change to one field of a real manifest (type, value, missing key, extra key, path components in a
    name, a huge number, a bad digest): only PackError comes out, and whatever parses is still safe to use."""
    raw = copy.deepcopy(real_manifest)
    path = data.draw(st.sampled_from(list(_paths(raw))), label="path")
    value = _get(raw, path)
    ops = ["replace", "odd", "wrap"] + (["delete"] if path else []) + (["extra_key"] if isinstance(value, dict) else [])
    ops += ["escape"] if isinstance(value, str) else []
    ops += ["rename_file"] if path == ("files",) else []
    ops += ["bad_digest"] if len(path) == 3 and path[0] == "files" and path[2] == "sha256" else []
    op = data.draw(st.sampled_from(ops), label="op")
    must_fail = False
    if op == "replace":
        new = data.draw(json_values)
    elif op == "odd":
        new = data.draw(st.sampled_from(ODD_VALUES))
    elif op == "wrap":
        new = data.draw(st.sampled_from([[value], {"value": value}, str(value)]))
    elif op == "escape":
        new = data.draw(st.sampled_from(ESCAPES)).format(value)
        must_fail = _is_file_name_location(raw, path)
    elif op == "bad_digest":
        new = data.draw(st.sampled_from([value.upper(), value[:-1], value + "0", "g" * 64, value + "\n", ""]))
        must_fail = True
    if op == "delete":
        del _get(raw, path[:-1])[path[-1]]
    elif op == "extra_key":
        value[data.draw(st.text(max_size=12))] = data.draw(json_values)
    elif op == "rename_file":
        old = data.draw(st.sampled_from(sorted(value)))
        value[data.draw(st.sampled_from(ESCAPES)).format(old)] = value.pop(old)
        must_fail = True
    elif path:
        _get(raw, path[:-1])[path[-1]] = new
    else:
        raw = new
    try:
        m = parse_manifest(pack_dir, raw)
    except PackError:
        return
    assert not must_fail, (path, op)
    names = [*m.files, *m.models.values(), *(e.file for e in m.engines), *([m.bank] if m.bank else []),
             *(m.encoder.values() if m.encoder else [])]
    for name in names:
        assert isinstance(name, str) and (pack_dir / name).parent == pack_dir and ".." not in name, name
        assert name in m.files
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in m.files.values())
    for dim in (m.nz, m.embedding_dim, m.resolution, *(e.max_batch for e in m.engines)):
        assert type(dim) is int and 1 <= dim <= 4096
    assert [t.name for t in m.inputs] == ["z", "embedding"] and [t.name for t in m.outputs] == ["image"]


@FUZZ
@given(st.text(max_size=200))
def test_prompt_normalisation_is_idempotent_and_never_crashes(text):
    once = normalize_prompt(text)
    assert normalize_prompt(once) == once
    assert once == once.strip() and "  " not in once


def test_normalise_rejects_non_strings():
    with pytest.raises(InputError):
        normalize_prompt(b"bytes")  # type: ignore[arg-type]


CAPTION_WORDS = sorted({w for values in SYNONYMS.values() for train, novel in values.values() for p in train + novel
                        for w in p.replace("-", " ").split()} | {"a", "in", "the", "on", "at", "background", "dragon"})
SPELLINGS = [str.upper, str.title, lambda t: f"\t {t}  ", lambda t: t.replace(" ", " ,  "), lambda t: t.replace(" ", "-")]


@FUZZ
@given(st.lists(st.sampled_from(CAPTION_WORDS), max_size=12), st.text(max_size=60), st.sampled_from(SPELLINGS))
def test_caption_parser_on_random_text(words, junk, spelling):
    """Any text parses to vocabulary values or None; the same words parse the same whatever their case,
    spacing and punctuation."""
    cap = parse_caption(" ".join(words) + junk)
    for attr, values in (("shape", vocab.SHAPES), ("color", vocab.COLORS), ("size", vocab.SIZES),
                         ("position", vocab.POSITIONS), ("background", vocab.BACKGROUNDS)):
        assert getattr(cap, attr) is None or getattr(cap, attr) in values, attr
    text = " ".join(words)
    assert parse_caption(spelling(text)) == parse_caption(text)


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
