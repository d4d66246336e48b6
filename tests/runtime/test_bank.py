"""The prompt bank on hand-made entries: lookups, policies, nearest, slerp, the .npz format and its checks."""

import json
import math

import numpy as np
import pytest

from edge_t2i import _io
from edge_t2i.errors import EdgeT2IError, InputError, PackError
from edge_t2i.runtime.bank import Match, PromptBank, check_policy, slerp

TEXTS = ["a big red circle in the top left corner", "red circle", "blue star", "Green  SQUARE"]
EMB = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.5], [1.0, 1.0, 0.0]], np.float32)


class FakeEncoder:
    name = "fake"

    def __init__(self, vectors: dict[str, list[float]], dtype=np.float64):
        self.vectors, self.dtype, self.calls = vectors, dtype, []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([self.vectors[t] for t in texts], self.dtype)


@pytest.fixture
def bank() -> PromptBank:
    return PromptBank(TEXTS, EMB, "test-encoder")


def angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.acos(float(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


# ---- slerp --------------------------------------------------------------------------------------
def test_slerp_endpoints_are_the_unit_inputs():
    a, b = np.array([3.0, 4.0, 0.0], np.float32), np.array([0.0, 0.0, 0.2], np.float32)
    assert np.allclose(slerp(a, b, 0.0), [0.6, 0.8, 0.0], atol=1e-7)
    assert np.allclose(slerp(a, b, 1.0), [0.0, 0.0, 1.0], atol=1e-7)
    out = slerp(a, b, 0.4)
    assert out.dtype == np.float32 and abs(float(np.linalg.norm(out)) - 1.0) < 1e-6


def test_slerp_midpoint_of_orthogonal_vectors():
    out = slerp(np.array([2.0, 0.0]), np.array([0.0, 0.5]), 0.5)
    assert np.allclose(out, [math.sqrt(0.5), math.sqrt(0.5)], atol=1e-7)


@pytest.mark.parametrize("omega", [0.3, 1.0, math.pi / 2, 2.5])
@pytest.mark.parametrize("t", [0.1, 1 / 3, 0.75])
def test_slerp_moves_at_constant_angular_speed(omega, t):
    """The result lies on the great circle from a to b, at angle t * omega from a (hand computation)."""
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([math.cos(omega), math.sin(omega), 0.0]) * 7.0  # length does not matter
    out = slerp(a, b, t)
    assert np.allclose(out, [math.cos(t * omega), math.sin(t * omega), 0.0], atol=1e-6)
    assert angle(out, a) == pytest.approx(t * omega, abs=1e-5)
    assert angle(out, b) == pytest.approx((1 - t) * omega, abs=1e-5)


def test_slerp_of_short_vectors_normalises_them_first():
    a, b = np.array([0.01, 0.0]), np.array([0.0, 0.001])
    assert np.allclose(slerp(a, b, 1 / 3), [math.cos(math.pi / 6), math.sin(math.pi / 6)], atol=1e-6)


def test_slerp_of_a_vector_with_itself_is_that_direction():
    rng = np.random.default_rng(0)
    for _ in range(20):  # some of these round to a cosine just above 1
        a = rng.standard_normal(384).astype(np.float32)
        out = slerp(a, a.copy(), 0.3)
        assert np.isfinite(out).all() and np.allclose(out, a / np.linalg.norm(a), atol=1e-6)
    near = np.array([1.0, 1e-9, 0.0])  # an angle below 1e-6 rad: plain interpolation
    assert np.allclose(slerp(np.array([1.0, 0.0, 0.0]), near, 0.5), [1.0, 0.0, 0.0], atol=1e-9)


def test_slerp_from_a_zero_vector_is_the_other_direction():
    b = np.array([0.0, 3.0, 4.0])
    for t in (0.25, 0.5, 1.0):
        out = slerp(np.zeros(3), b, t)
        assert np.allclose(out, [0.0, 0.6, 0.8], atol=1e-7) and abs(float(np.linalg.norm(out)) - 1) < 1e-6


def test_slerp_never_returns_nan_even_for_opposite_vectors():
    rng = np.random.default_rng(1)
    for _ in range(20):  # cosines that round to just below -1
        a = rng.standard_normal(384).astype(np.float32)
        for t in (0.0, 0.25, 1.0):
            assert np.isfinite(slerp(a, -a, t)).all()
        assert np.allclose(slerp(a, -a, 0.0), a / np.linalg.norm(a), atol=1e-5)


# ---- construction and checks ---------------------------------------------------------------------
def test_bank_basics(bank):
    assert len(bank) == 4 and bank.dim == 3 and bank.encoder_name == "test-encoder" and bank.encoder is None
    assert bank.embeddings.dtype == np.float32 and bank.embeddings.flags["C_CONTIGUOUS"]
    assert "green square" in bank and " RED circle " in bank
    assert "red" not in bank and 5 not in bank and None not in bank


@pytest.mark.parametrize("texts,emb,msg", [
    (["a", "b"], np.zeros((3, 4), np.float32), "2 texts but embeddings of shape"),
    (["a", "b"], np.zeros((2, 4, 1), np.float32), "2 texts"),
    (["a"], np.zeros(4, np.float32), "1 texts"),
    (["a", "b"], np.array([[0.0, 1.0], [np.nan, 0.0]], np.float32), "NaN, inf"),
    (["a", "b"], np.array([[0.0, 1.0], [np.inf, 0.0]], np.float32), "NaN, inf"),
    (["a", "b " * 65], np.eye(2, dtype=np.float32), "prompt 2 is over 64 words"),
    (["a", ",".join("abcdefghijklmnopqrstuvwxyz"[:3] for _ in range(65))], np.eye(2, dtype=np.float32),
     "over 64 words"),  # no space, 65 words as the reader splits them: a bank prompt is bounded as a prompt is
])
def test_malformed_banks_are_refused(texts, emb, msg):
    with pytest.raises(PackError, match=msg):
        PromptBank(texts, emb, "x")


def test_check_policy():
    for p in ("error", "nearest", "encode"):
        assert check_policy(p) == p
    with pytest.raises(InputError, match="unknown unknown-prompt policy 'nearst'; did you mean 'nearest'"):
        check_policy("nearst")
    with pytest.raises(InputError):
        check_policy(None)


# ---- .npz format ----------------------------------------------------------------------------------
def test_save_writes_the_portable_safetensors_bank_and_load_reads_it_back(bank, tmp_path):
    path = bank.save(tmp_path / "bank.safetensors")
    assert path == tmp_path / "bank.safetensors"
    tensors, meta = _io.read_safetensors(path)  # an independent reader of the file format
    assert list(tensors) == ["embeddings"] and tensors["embeddings"].dtype == np.float16
    assert np.array_equal(tensors["embeddings"], EMB)
    assert meta == {"format": "edge-t2i bank v1", "normalization": "nfkc-strip-invisible-casefold-collapse-v1",
                    "encoder": "test-encoder", "dim": "3", "prompts": json.dumps(TEXTS)}
    again = PromptBank.load(path)
    assert again.texts == TEXTS and again.encoder_name == "test-encoder" and again.dim == 3
    assert again.embeddings.dtype == np.float32 and np.array_equal(again.embeddings, EMB)  # exact in float16
    full = PromptBank.load(bank.save(tmp_path / "b32.safetensors", dtype=np.float32))
    assert _io.read_safetensors(tmp_path / "b32.safetensors")[0]["embeddings"].dtype == np.float32
    assert np.array_equal(full.embeddings, EMB)
    enc = FakeEncoder({})
    assert PromptBank.load(path, encoder=enc).encoder is enc
    unicode = PromptBank(["ein großer Kreis", "\u5186"], EMB[:2], "x")
    assert PromptBank.load(unicode.save(tmp_path / "u.safetensors")).texts == ["ein großer Kreis", "\u5186"]
    assert _io.read_safetensors(tmp_path / "u.safetensors")[1]["prompts"] == '["ein großer Kreis", "\u5186"]'  # UTF-8


BANK_META = {"format": "edge-t2i bank v1", "normalization": "nfkc-strip-invisible-casefold-collapse-v1",
             "encoder": "enc", "dim": "2", "prompts": json.dumps(["a", "b"])}


TWO_BY_TWO = np.ones((2, 2), np.float16)


def write_safetensors(path, embeddings=TWO_BY_TWO, **meta):
    tensors = {} if embeddings is None else {"embeddings": embeddings}
    _io.write_safetensors(path, tensors, {k: v for k, v in {**BANK_META, **meta}.items() if v is not None})
    return path


def test_safetensors_bank_without_encoder_name_says_unknown(tmp_path):
    b = PromptBank.load(write_safetensors(tmp_path / "b.safetensors", encoder=None))
    assert b.encoder_name == "unknown" and b.texts == ["a", "b"]


@pytest.mark.parametrize("embeddings,meta,msg", [
    (None, {}, "must hold one 2-D tensor 'embeddings'"),
    (np.ones(2, np.float16), {}, "must hold one 2-D tensor 'embeddings'"),
    (np.ones((2, 2, 1), np.float32), {}, "must hold one 2-D tensor 'embeddings'"),
    (np.ones((2, 3), np.float16), {}, r"2 prompts, embeddings \[2, 3\] and dim 2 must agree"),
    (np.ones((2, 2), np.float16), {"dim": "3"}, "and dim 3 must agree"),
    (np.ones((2, 2), np.float16), {"dim": None}, "and dim None must agree"),
    (np.ones((3, 2), np.float16), {}, r"2 prompts, embeddings \[3, 2\]"),
    (np.full((2, 2), np.nan, np.float32), {}, "NaN, inf"),
    (np.ones((2, 2), np.float16), {"format": "edge-t2i bank v2"}, "format 'edge-t2i bank v2' .* re-convert the pack"),
    (np.ones((2, 2), np.float16), {"format": None}, "format None"),
    (np.ones((2, 2), np.float16), {"normalization": "lower-v0"}, "normalization 'lower-v0'"),
    (np.ones((2, 2), np.float16), {"normalization": None}, "normalization None"),
    (np.ones((2, 2), np.float16), {"prompts": None}, "'prompts' must be a JSON list of prompts"),
    (np.ones((2, 2), np.float16), {"prompts": '{"a": 1}'}, "'prompts' must be a JSON list"),
    (np.ones((2, 2), np.float16), {"prompts": '["a", 2]'}, "'prompts' must be a JSON list"),
    (np.ones((2, 2), np.float16), {"prompts": "[a, b]"}, "unreadable"),
])
def test_safetensors_bank_is_checked(tmp_path, embeddings, meta, msg):
    with pytest.raises(PackError, match=msg):
        PromptBank.load(write_safetensors(tmp_path / "b.safetensors", embeddings, **meta))


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"garbage that is not a bank", (10**6).to_bytes(8, "little")])
def test_unreadable_banks(tmp_path, content):
    (tmp_path / "b.safetensors").write_bytes(content)
    with pytest.raises(PackError, match="is unreadable"):
        PromptBank.load(tmp_path / "b.safetensors")


def write(path, **arrays):
    """A legacy (schema 1) bank.npz."""
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def test_legacy_npz_bank_is_still_read(tmp_path):
    path = write(tmp_path / "bank.npz", texts=np.array(TEXTS), embeddings=EMB.astype(np.float16),
                 encoder=np.array("test-encoder"), dim=np.array(3))
    again = PromptBank.load(path)
    assert again.texts == TEXTS and again.encoder_name == "test-encoder" and np.array_equal(again.embeddings, EMB)


def test_load_without_encoder_name_says_unknown(tmp_path):
    b = PromptBank.load(write(tmp_path / "b.npz", texts=np.array(["a"]), embeddings=np.ones((1, 2), np.float16)))
    assert b.encoder_name == "unknown" and b.texts == ["a"]


@pytest.mark.parametrize("arrays,msg", [
    ({"texts": np.array([1, 2]), "embeddings": np.zeros((2, 2), np.float32)}, "'texts' must be"),
    ({"texts": np.array([["a"], ["b"]]), "embeddings": np.zeros((2, 2), np.float32)}, "'texts' must be"),
    ({"texts": np.array(["a", "b"]), "embeddings": np.zeros((2, 2), np.float64)}, "'embeddings' must be"),
    ({"texts": np.array(["a", "b"]), "embeddings": np.zeros((2, 2), np.int8)}, "'embeddings' must be"),
    ({"texts": np.array(["a", "b"]), "embeddings": np.zeros(2, np.float32)}, "'embeddings' must be"),
    ({"texts": np.array(["a", "b"])}, "unreadable"),
    ({"embeddings": np.zeros((2, 2), np.float32)}, "unreadable"),
    ({"texts": np.array(["a", "b"]), "embeddings": np.zeros((3, 2), np.float32)}, "2 texts"),
])
def test_load_refuses_malformed_arrays(tmp_path, arrays, msg):
    with pytest.raises(PackError, match=msg):
        PromptBank.load(write(tmp_path / "b.npz", **arrays))


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(PackError, match="not found"):
        PromptBank.load(tmp_path / "nope.npz")


def test_bank_size_limit(tmp_path):
    """At most a million prompts, in either format: a crafted bank cannot make the runtime build a huge index."""
    n = 1_000_000
    texts = np.array([""], "U1").repeat(n + 1)
    with pytest.raises(PackError, match="'texts' must be"):
        PromptBank.load(write(tmp_path / "big.npz", texts=texts, embeddings=np.ones((n + 1, 1), np.float16)))
    ok = PromptBank.load(write(tmp_path / "max.npz", texts=texts[:n], embeddings=np.ones((n, 1), np.float16)))
    assert len(ok) == n
    big = write_safetensors(tmp_path / "big.safetensors", np.ones((n + 1, 1), np.float16), dim="1",
                            prompts=json.dumps([""] * (n + 1)))
    with pytest.raises(PackError, match="at most 1000000 prompts"):
        PromptBank.load(big)
    at = write_safetensors(tmp_path / "max.safetensors", np.ones((n, 1), np.float16), dim="1",
                           prompts=json.dumps([""] * n))
    assert len(PromptBank.load(at)) == n


# ---- lookups --------------------------------------------------------------------------------------
def test_exact_is_by_normalised_prompt(bank):
    assert np.array_equal(bank.exact("GREEN square"), EMB[3])
    assert np.array_equal(bank.exact("  blue   star "), EMB[2])
    assert bank.exact("blue stars") is None


def test_nearest_to_an_embedding_is_by_cosine(bank):
    m = bank.nearest(np.array([1.0, 1.2, 0.0]) * 10)
    assert m == Match("Green  SQUARE", pytest.approx(2.2 / math.sqrt(2) / math.sqrt(2.44)), False, 3)
    m = bank.nearest(np.array([0.1, 0.0, 1.0]))
    assert (m.prompt, m.index, m.exact) == ("blue star", 2, False)
    assert m.similarity == pytest.approx(1 / math.sqrt(1.01))
    short = bank.nearest(np.array([0.1, 0.0, 1.0]) * 0.01)  # a short query: still the cosine
    assert short.index == 2 and short.similarity == pytest.approx(1 / math.sqrt(1.01))
    assert bank.nearest(np.array([-1.0, 0.0, 0.0])).index != 0  # the least similar is never picked
    with pytest.raises(InputError, match="an embedding must be 3 finite float numbers"):
        bank.nearest(np.zeros(4))


def test_nearest_to_a_prompt(bank):
    assert bank.nearest("RED circle") == Match("red circle", 1.0, True, 1)
    with pytest.raises(InputError, match="no text encoder"):
        bank.nearest("a purple dragon")
    enc = FakeEncoder({"a purple dragon": [0.0, 0.2, 1.0]})
    with_enc = PromptBank(TEXTS, EMB, "fake", enc)
    m = with_enc.nearest("a purple dragon")
    assert (m.prompt, m.index, m.exact) == ("blue star", 2, False)
    assert m.similarity == pytest.approx(1 / math.sqrt(1.04))


def test_lookup_policies_without_an_encoder(bank):
    assert np.array_equal(bank.lookup("Red Circle"), EMB[1])
    with pytest.raises(InputError, match="not in the bank \\(4 prompts\\); closest: 'red circle'"):
        bank.lookup("red circles")
    with pytest.raises(InputError, match=r"not in the bank \(4 prompts\); ") as nothing_close:
        bank.lookup("xyz qqq")
    assert "closest" not in str(nothing_close.value)
    with pytest.raises(InputError, match="no text encoder"):
        bank.lookup("red circles", "encode")
    with pytest.raises(InputError, match="did you mean"):
        bank.lookup("red circle", "nerest")


@pytest.mark.parametrize("query,index", [
    ("red circle top", 1),                  # Jaccard 2/3 with 'red circle', 3/9 with the long one
    ("big red circle in the top left", 0),  # 7/9 with the long one, 2/7 with 'red circle'
    ("a green star", 2),                    # 1/4 with 'blue star' and with 'green square': the first
])
def test_nearest_without_an_encoder_is_by_word_overlap(bank, query, index):
    assert np.array_equal(bank.lookup(query, "nearest"), EMB[index])


def test_word_overlap_breaks_ties_by_bank_order():
    b = PromptBank(["blue star", "green square", "green star"], np.eye(3, dtype=np.float32), "x")
    assert np.array_equal(b.lookup("green star now", "nearest"), np.eye(3)[2])   # 2/3 beats 1/4
    assert np.array_equal(b.lookup("green", "nearest"), np.eye(3)[1])            # 1/2 twice: the first
    with pytest.raises(InputError, match="no bank prompt shares a word"):          # no overlap: none is nearest
        b.lookup("purple", "nearest")


def test_nearest_and_the_error_suggestion_follow_one_rule():
    b = PromptBank(["blue star", "green square", "green star"], np.eye(3, dtype=np.float32), "x")
    for query in ("green star now", "green", "a blue star please"):
        with pytest.raises(InputError) as err:
            b.lookup(query)
        suggested = str(err.value).split("closest: ")[1].split("'")[1]
        assert np.array_equal(b.lookup(query, "nearest"), b.exact(suggested)), query
    enc = FakeEncoder({"a purple dragon": [0.0, 0.2, 1.0]})
    with_encoder = PromptBank(TEXTS, EMB, "fake", enc)
    with pytest.raises(InputError, match=f"closest: {TEXTS[2]!r}"):  # the encoder's pick, as nearest's
        with_encoder.lookup("a purple dragon")


def test_lookup_policies_with_an_encoder():
    enc = FakeEncoder({"a purple dragon": [0.0, 0.2, 1.0]})
    b = PromptBank(TEXTS, EMB, "fake", enc)
    out = b.lookup("a purple dragon", "encode")
    assert out.dtype == np.float32 and np.allclose(out, [0.0, 0.2, 1.0])
    assert np.array_equal(b.lookup("a purple dragon", "nearest"), EMB[2])  # by the encoder, not word overlap
    assert np.array_equal(b.lookup("blue star", "encode"), EMB[2]) and enc.calls == [["a purple dragon"]] * 2


def test_an_encoder_of_the_wrong_size_is_a_pack_error():
    b = PromptBank(TEXTS, EMB, "fake", FakeEncoder({"x": [1.0, 0.0]}))
    with pytest.raises(PackError, match="gives 2-d vectors, the bank holds 3-d"):
        b.lookup("x", "encode")


def test_blend(bank):
    assert np.allclose(bank.blend("red circle", "blue star", 0.0), [0, 1, 0], atol=1e-7)
    assert np.allclose(bank.blend("red circle", "blue star", 1.0), [0, 0, 1], atol=1e-7)
    mid = bank.blend("red circle", np.array([0.0, 0.0, 9.0], np.float32), 0.5)
    assert np.allclose(mid, [0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-7)
    third = bank.blend(np.array([0.0, 1.0, 0.0]), "a big red circle in the top left corner", 1 / 3)
    assert np.allclose(third, [0.5, math.cos(math.pi / 6), 0], atol=1e-6)
    near = bank.blend("red circle top", "blue star", 0.0, policy="nearest")
    assert np.allclose(near, [0, 1, 0], atol=1e-7)
    for t in (-0.01, 1.01, float("nan"), True, "0.5", None, [0.5]):
        with pytest.raises(InputError, match=r"blend t must be a number in \[0, 1\], got"):
            bank.blend("red circle", "blue star", t)
    for t in (1, np.float32(0.5), np.float64(0.0)):  # ints and numpy floats are numbers
        assert abs(float(np.linalg.norm(bank.blend("red circle", "blue star", t))) - 1) < 1e-6
    with pytest.raises(InputError, match="not in the bank"):
        bank.blend("red circle top", "blue star", 0.5)
    for end in ([0.0, 1.0, 0.0], None, 3):
        with pytest.raises(InputError, match=r"blend takes prompts or embeddings \[3\], got"):
            bank.blend(end, "blue star", 0.5)
        with pytest.raises(InputError, match="blend takes prompts or embeddings"):
            bank.blend("blue star", end, 0.5)


# ---- bugs found by mutation/fuzz review, fixed ------------------------------------------------------------
def _raw_safetensors(path, header: bytes, body: bytes = b""):
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + body)
    return path


def _header(**tensors) -> bytes:
    return json.dumps({"__metadata__": BANK_META, **tensors}).encode()


@pytest.mark.parametrize("make", [
    lambda p: write_safetensors(p, prompts="[" * 100_000),
    lambda p: _raw_safetensors(p, b"[" * 100_000),
    lambda p: _raw_safetensors(p, _header(embeddings={"dtype": "F16", "shape": [2, 2], "data_offsets": []}),
                               b"\0" * 8),
    lambda p: _raw_safetensors(p, _header(a={"dtype": "F16", "shape": [1], "data_offsets": ["x", 2]},
                                          embeddings={"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}),
                               b"\0" * 8),
], ids=["deep-prompts", "deep-header", "empty-offsets", "string-offsets"])
def test_crafted_safetensors_banks_are_a_pack_error(tmp_path, make):
    with pytest.raises(PackError):
        PromptBank.load(make(tmp_path / "b.safetensors"))


def test_an_empty_bank_is_a_package_error_not_a_crash(tmp_path):
    path = write_safetensors(tmp_path / "e.safetensors", np.ones((0, 2), np.float16), prompts="[]")
    with pytest.raises(EdgeT2IError):
        PromptBank.load(path).lookup("a red circle", "nearest")


def test_the_not_in_the_bank_error_offers_only_remedies_this_pack_has():
    without = PromptBank(["blue star", "green square"], np.eye(2, 4, dtype=np.float32), "x")
    with pytest.raises(InputError) as err:
        without.lookup("a blue star please")
    assert "'encode'" not in str(err.value) and "--unknown nearest" in str(err.value)
    with_encoder = PromptBank(["blue star", "green square"], np.eye(2, 4, dtype=np.float32), "x",
                              FakeEncoder({"a blue star please": [1.0, 0.0, 0.0, 0.0]}))
    with pytest.raises(InputError, match="nearest\\|encode"):
        with_encoder.lookup("a blue star please")
