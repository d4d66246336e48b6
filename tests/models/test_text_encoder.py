import numpy as np

from edge_t2i.models import text_encoder as text


def test_encoder_gives_normalised_384d_vectors_that_mean_something():
    e = text.encode(["a small red circle", "a tiny crimson disc", "a large blue star in the bottom right"])
    assert e.shape == (3, text.EMBEDDING_DIM) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2]  # synonyms are closer than a different object


def test_cache_encodes_only_new_texts(tmp_path, monkeypatch):
    cache = tmp_path / "emb.npz"
    first = text.cached_embeddings(["a", "b", "a"], cache)
    assert first.shape == (3, 384) and np.array_equal(first[0], first[2])
    calls = []
    real = text.encode
    monkeypatch.setattr(text, "encode", lambda t: calls.append(list(t)) or real(t))
    again = text.cached_embeddings(["b", "c"], cache)
    assert calls == [["c"]]
    assert np.array_equal(again[0], first[1])
    assert set(text.load_cache(cache)) == {"a", "b", "c"}


def test_encode_rejects_a_bare_string():
    import pytest

    from edge_t2i.errors import DataError

    with pytest.raises(DataError):
        text.encode("a red circle")
