"""Generator quality, measured by the oracle: seen pairs, held-out pairs, novel phrasings, diversity.

Used for the model card (`edge-t2i quality CKPT`) and by tests on tiny models.
Samples are one per caption with fixed seeds (seed = caption index), through the
torch reference, from a deterministic test split of the shapes dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_t2i.data import oracle
from edge_t2i.data.shapes import iter_samples
from edge_t2i.sample import torch_images


def _score(checkpoint: Path, samples: list, seed_offset: int, resolution: int) -> dict:
    from edge_t2i import text

    texts = [s.text for s in samples]
    images = torch_images(checkpoint, text.encode(texts), [seed_offset + i for i in range(len(samples))])
    expected = [{**vars(s.objects[0]), "background": None} for s in samples]
    return oracle.score([oracle.judge(im) for im in images], expected).as_dict()


def diversity(checkpoint: Path, prompt: str, seeds: int = 16) -> float:
    """Mean pairwise L1 distance (0..255 scale) between images of one prompt over `seeds` seeds."""
    from edge_t2i import text

    emb = np.repeat(text.encode([prompt]), seeds, axis=0)
    return pairwise_l1(torch_images(checkpoint, emb, list(range(seeds))))


def pairwise_l1(images: np.ndarray) -> float:
    """Mean L1 (0..255) over all pairs of uint8 images of one caption: 0 is a collapsed generator."""
    x = images.astype(np.float32).reshape(len(images), -1)
    return float(np.mean([np.abs(x[i] - x[j]).mean() for i in range(len(x)) for j in range(i + 1, len(x))]))


def evaluate_generator(checkpoint: str | os.PathLike[str], count: int = 1000, seed: int = 1) -> dict:
    """Oracle figures on `count` seen-pair test captions, plus held-out pairs and novel phrasings."""
    from edge_t2i.checkpoint import load_generator

    ckpt = Path(checkpoint)
    res = load_generator(ckpt).config.resolution
    pool = list(iter_samples(count * 2, seed=seed, split="test", resolution=res))
    seen = [s for s in pool if not s.heldout][:count]
    held = list(s for s in iter_samples(count * 8, seed=seed + 1, split="test", resolution=res) if s.heldout)
    novel = [s for s in iter_samples(count, seed=seed + 2, split="test", resolution=res, novel_captions=True)
             if not s.heldout]
    prompts = ["a large red circle in the center", "a small blue star in the top-left"]
    return {
        "seen": _score(ckpt, seen, 0, res),
        "heldout_pairs": _score(ckpt, held[: max(1, count // 2)], 0, res),
        "novel_phrasing": _score(ckpt, novel[: max(1, count // 2)], 0, res),
        "diversity_l1": {p: round(diversity(ckpt, p), 2) for p in prompts},
        "count": {"seen": len(seen), "heldout_pairs": min(len(held), max(1, count // 2)),
                  "novel_phrasing": min(len(novel), max(1, count // 2))},
    }
