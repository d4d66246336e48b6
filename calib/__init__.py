"""Calibration prompt sets and the calibration data built from them.

`prompts/` holds text files, one prompt a line:
    calibration.txt  prompts whose activations calibrate INT8 (disjoint from eval.txt)
    eval.txt         prompts of the quality gate (INT8 vs FP32)
    bank.txt         the default prompt bank of a pack: every attribute combination
`calibration_batches` turns prompts into deterministic {input_name: array} batches
(seeded standard-normal z + the prompts' embeddings), saved as .npz with a sha256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i.errors import DataError

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
MAX_PROMPT_CHARS = 1000


def default_prompts(name: str) -> Path:
    return PROMPTS_DIR / f"{name}.txt"


def read_prompts(path: str | os.PathLike[str], allow_duplicates: bool = False) -> list[str]:
    """Prompts of a text file, one a line (blank lines and '#' comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompt file {path} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"prompt file {path} is not UTF-8 text (byte {exc.start})") from exc
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise DataError(f"prompt file {path} holds no prompts")
    too_long = [i for i, p in enumerate(prompts) if len(p) > MAX_PROMPT_CHARS]
    if too_long:
        raise DataError(f"prompt file {path}: prompt {too_long[0] + 1} is longer than {MAX_PROMPT_CHARS} characters")
    if not allow_duplicates:
        seen: dict[str, int] = {}
        for i, p in enumerate(prompts):
            key = " ".join(p.lower().split())
            if key in seen:
                raise DataError(f"prompt file {path}: prompt {i + 1} repeats prompt {seen[key] + 1} ({p!r})")
            seen[key] = i
    return prompts


@dataclass(frozen=True)
class CalibrationData:
    """Calibration inputs: z [N, nz] and embedding [N, dim], read in batches."""

    z: np.ndarray
    embedding: np.ndarray
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.z.shape[0] != self.embedding.shape[0]:
            raise DataError("calibration z and embedding counts differ")
        if self.z.shape[0] < self.batch_size:
            raise DataError(f"calibration needs at least {self.batch_size} samples (one batch), got {self.z.shape[0]}")

    def __len__(self) -> int:
        return self.z.shape[0] // self.batch_size

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            s = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield {"z": self.z[s], "embedding": self.embedding[s]}

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the .npz atomically; returns its sha256."""
        from edge_t2i import atomic

        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, z=self.z, embedding=self.embedding, batch_size=np.array(self.batch_size))
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        return digest

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationData:
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls(f["z"].astype(np.float32), f["embedding"].astype(np.float32), int(f["batch_size"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"calibration data {path} is unreadable ({exc})") from exc


def calibration_batches(embeddings: np.ndarray, samples: int, nz: int, seed: int = 0,
                        batch_size: int = 8) -> CalibrationData:
    """`samples` deterministic (z, embedding) pairs: prompts cycled, z standard normal from `seed`."""
    if len(embeddings) == 0:
        raise DataError("no calibration prompts")
    if samples < batch_size:
        raise DataError(f"--calib-samples {samples} is fewer than one calibration batch ({batch_size})")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(embeddings)) for _ in range(-(-samples // len(embeddings)))])[:samples]
    z = rng.standard_normal((samples, nz), dtype=np.float32)
    return CalibrationData(z, embeddings[order].astype(np.float32), batch_size)
