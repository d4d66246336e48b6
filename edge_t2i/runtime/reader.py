"""The phrase reader: what a prompt asks for, read from the embeddings of its word windows (no torch).

A sentence embedding averages every word of a sentence, so in a sentence pattern the generator never
saw, the few words that say *where* ("over in the lower-left corner") are a small part of it: linear
probes on all-MiniLM-L6-v2 sentence embeddings read the position of held-out phrasings right 64% of
the time. The reader instead encodes every window of 1..`max_words` consecutive words of the prompt
(`phrase_windows`), and for each attribute group attends to the windows that carry it
(attention-based multiple-instance pooling, Ilse et al., ICML 2018: per group, softmax attention over
windows, then a classifier on the attention-weighted window logits). The read attributes pick the
canonical training caption of the generator's text adapter (networks.TextAdapter), whose embedding is
what the generator gets. Model: `networks.PhraseReader`, trained by `edge-t2i adapt`; in a pack, the
ONNX graph `reader.onnx` (input `windows` float32 [W, dim], the L2-normalised embeddings of the
windows; output `embedding` float32 [1, dim]; docs/pack-spec.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from edge_t2i.data.prompts import MAX_READ_CHARS, check_prompt, phrase_windows, window_bags
from edge_t2i.errors import PackError

__all__ = ["PhraseReadingEncoder", "phrase_windows"]


class PhraseReadingEncoder:
    """A text encoder (`encode(list[str]) -> float32 [n, dim]`) whose output for each text is the
    reader's embedding: the text's windows are encoded in one batch by `encoder`, then `reader.onnx`
    maps them to the embedding of the caption it reads. Thread-safe; the reader's session is made
    on the first call.

    Raises (from `encode`): PackError (unreadable reader, wrong dimensions), what `encoder` raises."""

    def __init__(self, encoder, reader: str | os.PathLike[str] | bytes | Callable[[], bytes],  # noqa: ANN001
                 max_words: object, threads: int = 1, label: str = "the phrase reader"):
        """`reader`: reader.onnx as a path, its bytes, or a function returning its bytes, called on first use (the
        runtime passes one that reads and verifies the pack file then: runtime/packfile.py)."""
        if not isinstance(max_words, int) or isinstance(max_words, bool) or not 1 <= max_words <= 16:
            raise PackError(f"the phrase reader's window must be 1..16 words, got {max_words!r}")
        self.encoder, self.max_words = encoder, max_words
        self.name = f"{getattr(encoder, 'name', 'text encoder')} + phrase reader"
        self._source, self._threads, self.label = reader, threads, label
        self._session = None
        self._lock = threading.Lock()

    @property
    def whole_words(self) -> frozenset[str] | None:
        """The text encoder's whole-word tokens, where it has them (data/spelling.py `read`)."""
        return getattr(self.encoder, "whole_words", None)

    def _reader(self):  # noqa: ANN202
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                from edge_t2i.runtime.backends.onnxruntime import quiet_sessions

                so = ort.SessionOptions()
                so.intra_op_num_threads = self._threads
                quiet_sessions(so)
                source = self._source() if callable(self._source) else self._source
                try:
                    self._session = ort.InferenceSession(source if isinstance(source, bytes) else str(source),
                                                         sess_options=so, providers=["CPUExecutionProvider"])
                except Exception as exc:  # ORT's own types, MemoryError
                    raise PackError(f"{self.label} cannot be loaded by ONNX Runtime "
                                    f"({str(exc).strip()[:200] or type(exc).__name__})") from exc
        return self._session

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        for text in texts:
            check_prompt(text, MAX_READ_CHARS)  # bounds the windows: MAX_PROMPT_WORDS words of a prompt as read
        unique, bags = window_bags(list(texts), self.max_words)
        vectors = np.asarray(self.encoder.encode(unique), np.float32)
        session = self._reader()
        out = []
        for bag in bags:
            try:
                row = session.run(["embedding"], {"windows": vectors[bag]})[0]
            except Exception as exc:  # ORT's own types, MemoryError
                raise PackError(f"{self.label} failed on {len(bag)} windows of {vectors.shape[1]}-d "
                                f"({str(exc).strip()[:200] or type(exc).__name__})") from exc
            if not isinstance(row, np.ndarray) or row.dtype.kind != "f" or row.shape != (1, vectors.shape[1]) \
                    or not np.isfinite(row).all():
                raise PackError(f"{self.label} returned {getattr(row, 'shape', type(row).__name__)}, expected finite "
                                f"float32 [1, {vectors.shape[1]}]")
            out.append(row[0])
        return np.stack(out).astype(np.float32) if out else np.zeros((0, vectors.shape[1]), np.float32)
