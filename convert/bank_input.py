"""`--bank-embeddings FILE`: prompts with vectors from the user's own text encoder (docs/pack-spec.md,
"Your own text encoder's bank").

The file is safetensors (readable without torch: edge_t2i._io.read_safetensors) holding one tensor,
`embeddings` float32 (or float16) [N, d], row i the sentence vector of prompt i. The prompts, a JSON
list of N strings, are in the metadata key `prompts`, or in a sidecar JSON file beside it with the
same name and the suffix `.json` (a list, or {"prompts": [...], "encoder": "..."}). The optional
metadata (or sidecar) key `encoder` names the text encoder, e.g. "DAMSM (DF-GAN, birds)".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.data.prompts import MAX_PROMPT_CHARS, normalize_prompt
from edge_t2i.errors import DataError

MAX_DIM = 4096                # the manifest's largest sane dimension (runtime/manifest.py)
MAX_SIDECAR_BYTES = 256 << 20


@dataclass(frozen=True)
class UserBank:
    prompts: list[str]
    embeddings: np.ndarray   # float32 [N, d]
    encoder: str             # the encoder's name as the file gives it, else "user"
    path: Path

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def split(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Disjoint row indices (calibration, evaluation): a seeded permutation cut in half (evaluation
        gets N // 2 rows, calibration the rest), so no prompt both calibrates INT8 and judges it."""
        order = np.random.default_rng(seed).permutation(len(self.prompts))
        cut = len(order) - len(order) // 2
        return np.sort(order[:cut]), np.sort(order[cut:])


def read_user_bank(path: str | os.PathLike[str]) -> UserBank:
    """Read and check a `--bank-embeddings` file (see the module docstring).

    Raises: DataError (missing or malformed file; no `embeddings` tensor or not 2-D; fewer than 2
    prompts (calibration and the gate need one each); prompts missing, not strings, empty, too long, or
    repeated (compared by normalize_prompt); a count that differs from the rows; NaN/inf values)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--bank-embeddings {path} not found (expected a safetensors file: docs/pack-spec.md)")
    try:
        tensors, meta = _io.read_safetensors(path)
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(f"--bank-embeddings {path} is not a float32/float16 safetensors file ({exc})") from exc
    emb = tensors.get("embeddings")
    if emb is None or emb.ndim != 2 or not 1 <= emb.shape[1] <= MAX_DIM:
        found = {k: list(v.shape) for k, v in tensors.items()}
        raise DataError(f"--bank-embeddings {path}: expected a tensor 'embeddings' [N, d] with d <= {MAX_DIM}, "
                        f"found {found}")
    prompts, encoder = _prompts_of(path, meta)
    if len(prompts) != emb.shape[0]:
        raise DataError(f"--bank-embeddings {path}: {len(prompts)} prompts for {emb.shape[0]} embedding rows")
    if len(prompts) < 2:
        raise DataError(f"--bank-embeddings {path}: {len(prompts)} prompt(s); at least 2 are needed "
                        "(calibration and the quality gate draw disjoint prompts)")
    values = emb.astype(np.float32)
    if not np.isfinite(values).all():
        row = int(np.argmax(~np.isfinite(values).all(axis=1)))
        raise DataError(f"--bank-embeddings {path}: the embedding of prompt {row} ({prompts[row]!r}) holds NaN or inf")
    return UserBank(prompts, values, encoder, path)


def _prompts_of(path: Path, meta: dict[str, str]) -> tuple[list[str], str]:
    sidecar = path.with_suffix(".json")
    if "prompts" in meta:
        raw, where = _parse_json(meta["prompts"], f"{path} metadata 'prompts'"), f"{path} metadata 'prompts'"
        encoder = meta.get("encoder", "user")
    elif sidecar.is_file():
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise DataError(f"{sidecar} is larger than {MAX_SIDECAR_BYTES >> 20} MiB")
        try:
            text = sidecar.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"{sidecar} is not UTF-8 text (byte {exc.start})") from exc
        raw, where = _parse_json(text, str(sidecar)), str(sidecar)
        encoder = meta.get("encoder", "user")
        if isinstance(raw, dict):
            encoder = str(raw.get("encoder", encoder))
            raw = raw.get("prompts")
    else:
        raise DataError(f"--bank-embeddings {path}: no prompts: put a JSON list of strings in the metadata key "
                        f"'prompts' or in {sidecar.name} beside it")
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise DataError(f"{where}: expected a JSON list of prompt strings")
    seen: dict[str, int] = {}
    for i, prompt in enumerate(raw):
        key = normalize_prompt(prompt)
        if not key or len(prompt) > MAX_PROMPT_CHARS:
            raise DataError(f"{where}: prompt {i} is empty or longer than {MAX_PROMPT_CHARS} characters")
        if key in seen:
            raise DataError(f"{where}: prompt {i} ({prompt!r}) repeats prompt {seen[key]}")
        seen[key] = i
    return raw, encoder


def _parse_json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{where} is not valid JSON ({str(exc)[:200]})") from None
