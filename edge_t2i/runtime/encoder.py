"""On-device text encoder: all-MiniLM-L6-v2 as ONNX + the `tokenizers` package, no torch.

Used only for prompts missing from the bank, when the pack was converted with
`--with-encoder`. Mean pooling over the attention mask, then L2 normalisation,
exactly as sentence-transformers does.
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING

import numpy as np

from edge_t2i.data.prompts import MAX_READ_CHARS, check_prompt
from edge_t2i.errors import MissingExtraError, PackError

if TYPE_CHECKING:
    from edge_t2i.runtime.manifest import Manifest

MAX_TOKENS = 128


class OnnxTextEncoder:
    """all-MiniLM-L6-v2: `encode(list[str]) -> float32 [n, 384]`, L2-normalised. `model`, `tokenizer`: file paths,
    or their bytes as runtime/packfile.py verified them (`label`: where they came from, for messages).

    Raises: MissingExtraError (extra `encoder`), PackError (the tokenizer or the model cannot be read, or the model
    fails on a text), InputError (a prompt over the limits of data/prompts.py `check_prompt`)."""

    name = "sentence-transformers/all-MiniLM-L6-v2 (onnx)"

    def __init__(self, model: str | os.PathLike[str] | bytes, tokenizer: str | os.PathLike[str] | bytes,
                 threads: int = 1, label: str = "the text encoder"):
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingExtraError(f"encoding new prompts needs 'tokenizers': pip install 'edge-t2i[encoder]' ({exc})") from exc
        import onnxruntime as ort

        from edge_t2i.runtime.backends.onnxruntime import quiet_sessions

        self.label = label
        if isinstance(tokenizer, bytes):
            check_tokenizer(tokenizer, label)
        try:
            self.tokenizer = (Tokenizer.from_str(tokenizer.decode("utf-8")) if isinstance(tokenizer, bytes)
                              else Tokenizer.from_file(str(tokenizer)))
            self.tokenizer.enable_truncation(MAX_TOKENS)
            self.tokenizer.enable_padding()
            # the vocabulary's whole words (no "##" continuation): a 3-letter one is a word, not a typo (spelling.py)
            self.whole_words = frozenset(t for t in self.tokenizer.get_vocab() if not t.startswith("##"))
        except BaseException as exc:  # tokenizers: Exception for a malformed file, a Rust panic (PanicException,
            _reraise_control(exc)      # a BaseException) for some; UnicodeDecodeError
            raise PackError(f"the tokenizer of {label} is unreadable ({_first_line(exc)})") from exc
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        quiet_sessions(so)
        try:
            self.session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=so,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's InvalidProtobuf, Fail, ...; MemoryError
            raise PackError(f"{label} cannot be loaded by ONNX Runtime ({_first_line(exc)})") from exc
        self.input_names = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        for text in texts:
            check_prompt(text, MAX_READ_CHARS)  # a prompt as read, or one of its windows
        try:
            enc = self.tokenizer.encode_batch(list(texts))
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]  # [B, T, 384]
        except BaseException as exc:  # ORT's own types, MemoryError; tokenizers' Exception or Rust panic (a crafted
            _reraise_control(exc)      # pre-tokenizer regex past Oniguruma's retry limit panics)
            raise PackError(f"{self.label} failed on {len(texts)} text(s) ({_first_line(exc)})") from exc
        if not isinstance(hidden, np.ndarray) or hidden.dtype.kind != "f" or hidden.ndim != 3 \
                or hidden.shape[:2] != ids.shape:
            raise PackError(f"{self.label} returned {getattr(hidden, 'shape', type(hidden).__name__)}, "
                            f"expected [texts, tokens, dim] for {list(ids.shape)} tokens")
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        out = (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        if not np.isfinite(out).all():
            raise PackError(f"{self.label} produced NaN or inf: its weights are broken")
        return out


def check_tokenizer(data: bytes, label: str) -> None:
    """PackError unless `data` is a tokenizer.json without regular expressions: a crafted pre-tokenizer pattern
    can backtrack past Oniguruma's retry limit, and the Rust tokenizer then panics, printing its backtrace on
    stderr before Python sees an exception. MiniLM's (BertNormalizer, BertPreTokenizer, WordPiece) has none."""
    try:
        spec = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise PackError(f"the tokenizer of {label} is not JSON ({str(exc)[:120]})") from None
    todo = [spec]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            if "Regex" in item:
                raise PackError(f"the tokenizer of {label} uses a regular expression ({str(item['Regex'])[:40]!r}): "
                                "the runtime takes WordPiece-style tokenizers without patterns")
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def _reraise_control(exc: BaseException) -> None:
    """Ctrl-C, SIGTERM (the CLI's Terminated) and exit pass through; anything else a library raised is the pack's."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class LazyTextEncoder:
    """An OnnxTextEncoder made on the first `encode` call, from pack files read and verified then (runtime/packfile.py:
    the bytes hashed are the bytes loaded): a pack with an encoder loads, and serves the prompts in its bank,
    without `tokenizers` installed. Thread-safe.

    Raises (from `encode`): MissingExtraError without `tokenizers` (extra `encoder`), PackError, InputError."""

    name = OnnxTextEncoder.name

    def __init__(self, manifest: Manifest, model: str, tokenizer: str, threads: int = 1):
        self._args = (manifest, model, tokenizer, threads)
        self._encoder: OnnxTextEncoder | None = None
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._made().encode(texts)

    @property
    def whole_words(self) -> frozenset[str]:
        """The tokenizer's whole-word tokens (data/spelling.py `read`). Raises as `encode`."""
        return self._made().whole_words

    def _made(self) -> OnnxTextEncoder:
        with self._lock:
            if self._encoder is None:
                from edge_t2i.runtime.packfile import read_model, read_verified

                manifest, model, tokenizer, threads = self._args
                self._encoder = OnnxTextEncoder(read_model(manifest, model), read_verified(manifest, tokenizer),
                                                threads, label=f"pack file {model}")
        return self._encoder
