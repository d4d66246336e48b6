"""Generator quality, measured by the oracle: seen pairs, held-out pairs, novel phrasings, diversity.

Used for the model card (`edge-t2i quality CKPT`) and by tests on tiny models.
Samples are one per caption with fixed seeds (seed = caption index), through the
torch reference, from a deterministic test split of the shapes dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_t2i.data.shapes import ShapeSample, iter_samples
from edge_t2i.eval import oracle
from edge_t2i.runtime.backends.torch import TorchBackend
from edge_t2i.runtime.pipeline import render

DIVERSITY_PROMPTS = ("a large red circle in the center", "a small blue star in the top-left")


def reference_images(checkpoint: str | os.PathLike[str], prompts: list[str], seeds: list[int]) -> np.ndarray:
    """uint8 [N, H, W, 3]: the checkpoint's torch generator on prompts[i] (encoded by the text
    encoder) with seeds[i] (z from `edge_t2i.runtime.noise`, as every backend)."""
    from edge_t2i.models import text_encoder

    backend = TorchBackend(checkpoint)
    return render(backend, text_encoder.encode(prompts), seeds, backend.config.nz)


def _score(checkpoint: Path, samples: list[ShapeSample]) -> dict:
    images = reference_images(checkpoint, [s.text for s in samples], list(range(len(samples))))
    rows = [{"text": s.text, "objects": [vars(s.objects[0])], "background": None} for s in samples]
    return oracle.score_images(images, rows).as_dict()


def diversity(checkpoint: Path, prompt: str, seeds: int = 16) -> float:
    """Mean pairwise L1 distance (0..255 scale) between images of one prompt over `seeds` seeds."""
    return pairwise_l1(reference_images(checkpoint, [prompt] * seeds, list(range(seeds))))


def pairwise_l1(images: np.ndarray) -> float:
    """Mean L1 (0..255) over all pairs of uint8 images of one caption: 0 is a collapsed generator."""
    x = images.astype(np.float32).reshape(len(images), -1)
    return float(np.mean([np.abs(x[i] - x[j]).mean() for i in range(len(x)) for j in range(i + 1, len(x))]))


def evaluate_generator(checkpoint: str | os.PathLike[str], count: int = 1000, seed: int = 1) -> dict:
    """Oracle figures on `count` seen-pair test captions, plus held-out pairs and novel phrasings
    (count // 2 each), and the diversity of DIVERSITY_PROMPTS.

    Returns: {"seen" | "heldout_pairs" | "novel_phrasing": Scores.as_dict(), "diversity_l1": {prompt: L1},
    "count": {...}}. Raises: CheckpointError, MissingExtraError (needs the `train` extra)."""
    from edge_t2i.models.checkpoint import load_generator

    ckpt = Path(checkpoint)
    res = load_generator(ckpt).config.resolution
    pool = list(iter_samples(count * 2, seed=seed, split="test", resolution=res))
    seen = [s for s in pool if not s.heldout][:count]
    held = [s for s in iter_samples(count * 8, seed=seed + 1, split="test", resolution=res) if s.heldout]
    novel = [s for s in iter_samples(count, seed=seed + 2, split="test", resolution=res, novel_captions=True)
             if not s.heldout]
    half = max(1, count // 2)
    return {
        "seen": _score(ckpt, seen),
        "heldout_pairs": _score(ckpt, held[:half]),
        "novel_phrasing": _score(ckpt, novel[:half]),
        "diversity_l1": {p: round(diversity(ckpt, p), 2) for p in DIVERSITY_PROMPTS},
        "count": {"seen": len(seen), "heldout_pairs": min(len(held), half), "novel_phrasing": min(len(novel), half)},
    }
