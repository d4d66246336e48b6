"""Calibration data: deterministic {input_name: array} batches built from prompt embeddings.

`calibration_batches` pairs the prompts' embeddings (cycled) with seeded standard-normal z;
the data is saved in the pack as .npz with its sha256 (ONNX Runtime's CalibrationDataReader
and ModelOpt's --calibration_data_path both read it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.errors import DataError

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


def default_prompts(name: str) -> Path:
    """One of the shipped prompt sets: "bank", "calibration" or "eval"."""
    return PROMPTS_DIR / f"{name}.txt"


@dataclass(frozen=True)
class CalibrationData:
    """Calibration inputs: z [N, nz] and embedding [N, dim], read in batches (an unconditional generator's
    embedding is [N, 0]: its batches hold z alone)."""

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
            yield {"z": self.z[s]} if self.embedding.shape[1] == 0 else {"z": self.z[s], "embedding": self.embedding[s]}

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write safetensors (float32 "z" and "embedding", metadata batch_size) atomically; returns its sha256."""
        return _io.write_safetensors(path, {"z": self.z.astype(np.float32), "embedding": self.embedding.astype(np.float32)},
                                     {"format": "edge-t2i calibration v1", "batch_size": str(self.batch_size)})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationData:
        """Read what `save` wrote. Raises DataError if it is missing or malformed."""
        try:
            tensors, meta = _io.read_safetensors(path)
            return cls(tensors["z"].astype(np.float32), tensors["embedding"].astype(np.float32),
                       int(meta["batch_size"]))
        except (OSError, ValueError, KeyError, RecursionError) as exc:
            raise DataError(f"calibration data {path} is unreadable ({exc})") from exc


def calibration_batches(embeddings: np.ndarray, samples: int, nz: int, seed: int = 0,
                        batch_size: int = 8) -> CalibrationData:
    """`samples` deterministic (z, embedding) pairs: embeddings float32 [P, dim] cycled in seeded
    permutations, z float32 [samples, nz] standard normal from `seed`; read in batches of `batch_size`.

    Raises: DataError (no embeddings, or fewer samples than one batch)."""
    if len(embeddings) == 0:
        raise DataError("no calibration prompts")
    if samples < batch_size:
        raise DataError(f"--calib-samples {samples} is fewer than one calibration batch ({batch_size})")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(embeddings)) for _ in range(-(-samples // len(embeddings)))])[:samples]
    z = rng.standard_normal((samples, nz), dtype=np.float32)
    return CalibrationData(z, embeddings[order].astype(np.float32), batch_size)
