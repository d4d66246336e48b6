"""Reference sampling with the torch generator (what INT8 versions are compared against)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edge_t2i import atomic
from edge_t2i.data.imagefolder import preview_grid, save_png
from edge_t2i.runtime.generator import noise


def torch_images(checkpoint_dir: str | os.PathLike[str], embeddings: np.ndarray, seeds: list[int],
                 batch: int = 64) -> np.ndarray:
    """uint8 [N, H, W, 3] from the checkpoint's generator, z from the same NumPy seeds as the runtime."""
    import torch

    from edge_t2i.checkpoint import load_generator
    from edge_t2i.runtime.generator import to_uint8

    model = load_generator(checkpoint_dir)
    z = noise(seeds, model.config.nz)
    out = []
    with torch.no_grad():
        for i in range(0, len(z), batch):
            out.append(model(torch.from_numpy(z[i:i + batch]), torch.from_numpy(embeddings[i:i + batch])).numpy())
    return to_uint8(np.concatenate(out))


def write_imagefolder(out: str | os.PathLike[str], images: np.ndarray, prompts: list[str],
                      seeds: list[int]) -> Path:
    """One PNG per prompt plus metadata.jsonl (file_name, text, seed), written atomically."""
    with atomic.atomic_dir(out) as tmp:
        rows = []
        for i, (img, text, seed) in enumerate(zip(images, prompts, seeds)):
            name = f"{i:05d}.png"
            save_png(tmp / name, img)
            rows.append(json.dumps({"file_name": name, "text": text, "seed": seed}))
        atomic.write_text(tmp / "metadata.jsonl", "\n".join(rows) + "\n")
    return Path(out)


def write_grid(out: str | os.PathLike[str], images: np.ndarray, columns: int) -> Path:
    return save_png(out, preview_grid(images, columns=columns, scale=max(1, 128 // images.shape[1])))
