"""Generator quality: the oracle's accuracy on test captions, clean images and what seeds change.

Used for the model card (`edge-t2i quality CKPT`) and by tests on tiny models. Every image is
rendered through the torch reference (`reference_images`), with the portable noise; every set is
a deterministic function of (count, seed), drawn from the test split of the shapes dataset:
- seen: `count` captions of (shape, color) pairs the train split has, seed = caption index;
- heldout_pairs: count // 2 captions of the pairs the train split never shows;
- heldout_phrasing: the first count // 2 seen samples (same attributes, same seeds, so the same
  noise) with the caption rewritten in the held-out phrasing (`data.phrasings.phrase`, heldout=True:
  patterns, synonyms and word orders training never uses), naming the background in every other one;
- novel_phrasing: count // 2 captions in the dataset's NOVEL phrasing (northwest, mauve, ...);
- seed spread: SPREAD_PROMPTS over `spread_seeds` seeds each, against real images of the same
  captions (`eval/spread.py`); the clean-image figures are over the seen set (`eval/cleanliness.py`).
A caption that names a background is scored on it too (`background` in its Scores: the named
backgrounds figure); `all` never includes the background.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from edge_t2i.data.captions import parse_caption
from edge_t2i.data.phrasings import phrase
from edge_t2i.data.shapes import ShapeObject, ShapeSample, draw_image, iter_samples, random_background
from edge_t2i.errors import DataError
from edge_t2i.eval import oracle
from edge_t2i.eval.cleanliness import measure_cleanliness
from edge_t2i.eval.spread import SeedSpread, background_distribution, seed_statistics, summarize_spread
from edge_t2i.eval.targets import target_rows
from edge_t2i.runtime.backends.torch import TorchBackend
from edge_t2i.runtime.pipeline import render

DIVERSITY_PROMPTS = ("a large red circle in the center", "a small blue star in the top-left")
# One caption per shape, both sizes, corner, edge and centre cells, seen (shape, color) pairs, no background
# named: what the caption leaves open is the cell position, the rotation and the background.
SPREAD_PROMPTS = (
    "a large red circle in the center", "a small blue star in the top-left",
    "a small green square in the bottom-right", "a small yellow triangle in the top",
    "a large cyan hexagon in the left", "a small pink cross in the right",
)
SPREAD_SEEDS = 32
DATA_DRAWS_PER_SEED = 4  # real images per generated one for the data's spread (a steadier reference)
SETS = ("seen", "heldout_pairs", "heldout_phrasing", "novel_phrasing")
_PHRASING_STREAM = 13  # rng stream of the held-out phrasings, apart from the dataset's


def reference_images(checkpoint: str | os.PathLike[str], prompts: list[str], seeds: list[int]) -> np.ndarray:
    """uint8 [N, H, W, 3]: the checkpoint's torch generator on prompts[i] (encoded as a pack's text
    encoder does: `text_encoder.encode_for`, through the phrase reader when the generator has one)
    with seeds[i] (z from `edge_t2i.runtime.noise`, as every backend)."""
    from edge_t2i.models import text_encoder

    backend = TorchBackend(checkpoint)
    return render(backend, text_encoder.encode_for(backend.model, prompts), seeds, backend.config.nz)


Case = tuple[ShapeSample, "str | None"]  # a test sample and the background its caption names (None: none)


def caption_sets(count: int, seed: int = 1, resolution: int = 64) -> dict[str, list[Case]]:
    """The evaluation's caption sets (module docstring), name -> [(sample, named background)]."""
    pool = iter_samples(count * 2, seed=seed, split="test", resolution=resolution)
    seen = [s for s in pool if not s.heldout][:count]
    held = [s for s in iter_samples(count * 8, seed=seed + 1, split="test", resolution=resolution) if s.heldout]
    novel = [s for s in iter_samples(count, seed=seed + 2, split="test", resolution=resolution, novel_captions=True)
             if not s.heldout]
    half = max(1, count // 2)
    phrased = []
    for i, s in enumerate(seen[:half]):
        o, named = s.objects[0], s.background if i % 2 == 0 else None
        text = phrase(np.random.default_rng([seed, _PHRASING_STREAM, i]), o.shape, o.color, o.size, o.position,
                      named, heldout=True)
        phrased.append((dataclasses.replace(s, text=text), named))
    grammar = lambda samples: [(s, parse_caption(s.text).background) for s in samples]  # noqa: E731
    return {"seen": grammar(seen), "heldout_pairs": grammar(held[:half]), "heldout_phrasing": phrased,
            "novel_phrasing": grammar(novel[:half])}


def _score(images: np.ndarray, cases: list[Case]) -> dict:
    rows = [{"text": s.text, "objects": [vars(s.objects[0])], "background": named} for s, named in cases]
    return oracle.score_images(images, rows).as_dict()


def diversity(checkpoint: Path, prompt: str, seeds: int = 16) -> float:
    """Mean pairwise L1 distance (0..255 scale) between images of one prompt over `seeds` seeds."""
    return pairwise_l1(reference_images(checkpoint, [prompt] * seeds, list(range(seeds))))


def pairwise_l1(images: np.ndarray) -> float:
    """Mean L1 (0..255) over all pairs of uint8 images of one caption: 0 is a collapsed generator."""
    x = images.astype(np.float32).reshape(len(images), -1)
    return float(np.mean([np.abs(x[i] - x[j]).mean() for i in range(len(x)) for j in range(i + 1, len(x))]))


def seed_spread(checkpoint: str | os.PathLike[str], seeds: int = SPREAD_SEEDS, seed: int = 1,
                prompts: tuple[str, ...] = SPREAD_PROMPTS, resolution: int = 64) -> SeedSpread:
    """`eval/spread.py`'s figures for `prompts` (dataset-grammar captions naming every attribute but the
    background): the generator over seeds 0..seeds-1 against DATA_DRAWS_PER_SEED x seeds real images of each
    caption (the dataset's jitter and background rule, seeded by `seed`; the background figure on the first
    `seeds` of them, the same sample size). Raises DataError for a prompt that does not name all four."""
    captions = [parse_caption(p) for p in prompts]
    if any(None in (c.shape, c.color, c.size, c.position) for c in captions):
        raise DataError("seed-spread prompts must name shape, color, size and position")
    images = reference_images(checkpoint, [p for p in prompts for _ in range(seeds)], list(range(seeds)) * len(prompts))
    generated, data, backgrounds = [], [], []
    for i, c in enumerate(captions):
        obj = ShapeObject(c.shape, c.color, c.size, c.position)  # type: ignore[arg-type]
        rng = np.random.default_rng([seed, 17, i])
        real = [draw_image(rng, obj, random_background(rng), resolution) for _ in range(DATA_DRAWS_PER_SEED * seeds)]
        mine = images[i * seeds:(i + 1) * seeds]
        generated.append(seed_statistics(mine, obj.shape, obj.position))
        data.append(seed_statistics(real, obj.shape, obj.position))
        backgrounds.append((background_distribution(mine), background_distribution(real[:seeds])))
    return summarize_spread(list(prompts), generated, data, backgrounds, seeds)


def _finite(x):  # noqa: ANN001, ANN202 - JSON has no NaN: write null
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def evaluate_generator(checkpoint: str | os.PathLike[str], count: int = 1000, seed: int = 1,
                       spread_seeds: int = SPREAD_SEEDS) -> dict:
    """Every figure of issue 13 for a checkpoint (module docstring for the sets).

    Returns (JSON-ready; NaN written as None):
    {"seen" | "heldout_pairs" | "heldout_phrasing" | "novel_phrasing": Scores.as_dict() of the generated images,
     "data": {"seen": Scores of the real images of the seen captions},
     "named_background": {"generated", "data": fractions, "count": captions of the seen set that name one},
     "clean": {"generated" | "data": Cleanliness.as_dict() over the seen set},
     "seed_spread": SeedSpread.as_dict(), "diversity_l1": {prompt: mean pairwise L1 of 16 seeds, 0..255},
     "count": {set: n}, "targets": [row of `targets.target_rows`]}.
    Raises: CheckpointError, MissingExtraError (needs the `train` extra)."""
    from edge_t2i.models.checkpoint import load_generator

    ckpt = Path(checkpoint)
    res = load_generator(ckpt).config.resolution
    sets = caption_sets(count, seed, res)
    r: dict = {}
    for name, cases in sets.items():
        images = reference_images(ckpt, [s.text for s, _ in cases], list(range(len(cases))))
        r[name] = _score(images, cases)
        if name == "seen":
            generated_seen = images
    real_seen = np.stack([s.image for s, _ in sets["seen"]])
    r["data"] = {"seen": _score(real_seen, sets["seen"])}
    named = sum(1 for _, bg in sets["seen"] if bg is not None)
    r["named_background"] = {"generated": r["seen"]["background"], "data": r["data"]["seen"]["background"],
                             "count": named}
    r["clean"] = {"generated": measure_cleanliness(generated_seen).as_dict(),
                  "data": measure_cleanliness(real_seen).as_dict()}
    r["seed_spread"] = seed_spread(ckpt, spread_seeds, seed, resolution=res).as_dict()
    r["diversity_l1"] = {p: round(diversity(ckpt, p), 2) for p in DIVERSITY_PROMPTS}
    r["count"] = {name: len(cases) for name, cases in sets.items()}
    r = _finite(r)
    r["targets"] = target_rows(r)
    return r
