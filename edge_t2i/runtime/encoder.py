"""On-device text encoder: all-MiniLM-L6-v2 as ONNX + the `tokenizers` package, no torch.

Used only for prompts missing from the bank, when the pack was converted with
`--with-encoder`. Mean pooling over the attention mask, then L2 normalisation,
exactly as sentence-transformers does.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from edge_t2i.errors import MissingExtraError, PackError

MAX_TOKENS = 128


class OnnxTextEncoder:
    name = "sentence-transformers/all-MiniLM-L6-v2 (onnx)"

    def __init__(self, model_path: str | os.PathLike[str], tokenizer_path: str | os.PathLike[str], threads: int = 1):
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingExtraError(f"encoding new prompts needs 'tokenizers': pip install 'edge-t2i[encoder]' ({exc})") from exc
        import onnxruntime as ort

        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:
            raise PackError(f"tokenizer {tokenizer_path} is unreadable ({exc})") from exc
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path), sess_options=so, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], np.int64)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]  # [B, T, 384]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class LazyTextEncoder:
    """An OnnxTextEncoder made on the first `encode` call: a pack with an encoder loads, and serves the
    prompts in its bank, without `tokenizers` installed. Thread-safe.

    Raises (from `encode`): MissingExtraError without `tokenizers` (extra `encoder`), PackError."""

    name = OnnxTextEncoder.name

    def __init__(self, model_path: str | os.PathLike[str], tokenizer_path: str | os.PathLike[str], threads: int = 1):
        self._args = (model_path, tokenizer_path, threads)
        self._encoder: OnnxTextEncoder | None = None
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._encoder is None:
                self._encoder = OnnxTextEncoder(*self._args)
        return self._encoder.encode(texts)
