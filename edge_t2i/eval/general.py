"""Quality of a generator on any data: KID and FID against real images, with the real-vs-real floor, and what
seeds change against what the data itself varies for one caption.

The figures (`edge-t2i quality CHECKPOINT --real DIR`, and the model cards of generators trained on general data):
- KID and FID (eval/kid.py: InceptionV3 pool_3, KID's cubic kernel averaged over subsets) of `count` generated
  images against `count` real ones. Generated image i draws real record i's caption with seed i (the torch
  reference, `quality.reference_images`), so both sets hold the same captions in the same proportions; a folder
  of generated images (`generate --prompts-file`) is read as it is. Sprites (premultiplied RGBA) are composited
  over white, as a viewer sees them.
- The floor: the same metrics between two disjoint random halves of the real images (n/2 each). No generator
  can be told from the data by less than this; FID's floor is biased up by the smaller n (compare KIDs).
- Diversity over seeds: for `captions` captions that have at least two real images, `seeds` images of each, the
  mean pairwise distance between them, in Inception features (Euclidean, the space KID and FID use) and in
  pixels (mean L1, 0..255), against the same mean over that caption's real images (for the emoji data: Google's
  and Twitter's drawing of it). A ratio of 0 is a generator whose seeds change nothing; 1, as much as the data.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge_t2i.data.imagefolder import ImageFolder, is_our_generated_images, premultiply, read_imagefolder
from edge_t2i.errors import DataError
from edge_t2i.eval import kid
from edge_t2i.eval.quality import pairwise_l1, reference_images


def _real_images(folder: ImageFolder, indices: list[int], side: int, rgba: bool) -> np.ndarray:
    import cv2

    out = []
    for i in indices:
        img = premultiply(folder.image_rgba(i)) if rgba else folder.image(i)
        if img.shape[:2] != (side, side):
            img = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        out.append(img)
    return np.stack(out)


def _pairwise_features(f: np.ndarray) -> float:
    d = [np.linalg.norm(f[i] - f[j]) for i in range(len(f)) for j in range(i + 1, len(f))]
    return float(np.mean(d))


def general_quality(generated: str | os.PathLike[str], real: str | os.PathLike[str], count: int = 1000,
                    captions: int = 32, seeds: int = 8, seed: int = 0) -> dict:
    """The figures of the module docstring for a checkpoint folder or a folder of generated images `generated`
    against the imagefolder `real`. `count` is capped at the real folder's size.

    Returns {"n", "kid", "kid_std", "fid", "floor": {"n", "kid", "kid_std", "fid"}, "diversity": {...}} (KID as
    the mean of subsets with its standard deviation, unitless; FID unitless).
    Raises: DataError (unreadable folders, fewer than 4 real images), CheckpointError, MissingExtraError
    (torch or the Inception weights: the `metrics` extra)."""
    folder = read_imagefolder(real)
    n = min(count, len(folder))
    if n < 4:
        raise DataError(f"{real} has {len(folder)} images: KID needs at least 4")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(folder), n, replace=False).tolist())
    gen_path = Path(generated)
    if is_our_generated_images(gen_path) or (gen_path / "metadata.jsonl").is_file():
        made = read_imagefolder(gen_path)
        fake = made.load_images(show_progress=False)[:n]
        side, rgba, checkpoint = fake.shape[1], False, None
    else:
        from edge_t2i.models.checkpoint import load_generator

        config = load_generator(gen_path).config
        side, rgba, checkpoint = config.resolution, config.channels == 4, gen_path
        fake = reference_images(checkpoint, [folder.records[i]["text"] for i in pick], pick)
    real_images = _real_images(folder, pick, side, rgba)
    f_real = kid.inception_features(real_images, progress=True)
    f_fake = kid.inception_features(fake, progress=True)
    size = min(1000, max(2, min(len(f_fake), len(f_real)) // 2))  # subsets that differ: a spread to report
    k = kid.kid(f_fake, f_real, subset_size=size)
    half = rng.permutation(len(f_real))
    a, b = f_real[half[: len(half) // 2]], f_real[half[len(half) // 2:]]
    floor = kid.kid(a, b, subset_size=min(1000, max(2, min(len(a), len(b)) // 2)))
    out = {"n": len(f_fake), "kid": k.mean, "kid_std": k.std, "fid": kid.fid(f_fake, f_real),
           "floor": {"n": len(a), "kid": floor.mean, "kid_std": floor.std, "fid": kid.fid(a, b)}}
    if checkpoint is not None:
        out["diversity"] = seed_diversity(checkpoint, folder, side, rgba, captions, seeds, seed)
    return out


def seed_diversity(checkpoint: Path, folder: ImageFolder, side: int, rgba: bool, captions: int = 32,
                   seeds: int = 8, seed: int = 0) -> dict:
    """Diversity over seeds for one caption, generated against real (module docstring); {} when no caption has
    two real images."""
    by_caption: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(folder.records):
        by_caption[r["text"]].append(i)
    shared = sorted(t for t, rows in by_caption.items() if len(rows) >= 2)
    if not shared:
        return {}
    rng = np.random.default_rng([seed, 1])
    texts = [shared[i] for i in sorted(rng.choice(len(shared), min(captions, len(shared)), replace=False))]
    fake = reference_images(checkpoint, [t for t in texts for _ in range(seeds)], list(range(seeds)) * len(texts))
    real_rows = [by_caption[t] for t in texts]
    real = _real_images(folder, [i for rows in real_rows for i in rows], side, rgba)
    f_fake = kid.inception_features(fake).reshape(len(texts), seeds, -1)
    f_real_all = kid.inception_features(real)
    g_feat, g_pix, d_feat, d_pix, start = [], [], [], [], 0
    for j, rows in enumerate(real_rows):
        f_real, imgs = f_real_all[start:start + len(rows)], real[start:start + len(rows)]
        start += len(rows)
        g_feat.append(_pairwise_features(f_fake[j]))
        g_pix.append(pairwise_l1(fake[j * seeds:(j + 1) * seeds]))
        d_feat.append(_pairwise_features(f_real))
        d_pix.append(pairwise_l1(imgs))
    gf, gp, df, dp = (float(np.mean(v)) for v in (g_feat, g_pix, d_feat, d_pix))
    return {"captions": len(texts), "seeds": seeds, "generated_feature": gf, "data_feature": df,
            "feature_ratio": gf / df if df else None, "generated_pixel_l1": gp, "data_pixel_l1": dp,
            "pixel_ratio": gp / dp if dp else None}


def format_general(r: dict) -> str:
    """The figures as lines for people."""
    f = r["floor"]
    lines = [f"KID {r['kid']:.4f} +- {r['kid_std']:.4f}, FID {r['fid']:.1f} (n={r['n']} generated vs {r['n']} real)",
             f"floor (real vs real, two halves of n={f['n']}): KID {f['kid']:.4f} +- {f['kid_std']:.4f}, "
             f"FID {f['fid']:.1f}"]
    d = r.get("diversity")
    if d:
        lines.append(f"diversity over {d['seeds']} seeds, {d['captions']} captions: Inception distance "
                     f"{d['generated_feature']:.2f} vs the data's {d['data_feature']:.2f} ({d['feature_ratio']:.2f}x), "
                     f"pixel L1 {d['generated_pixel_l1']:.1f} vs {d['data_pixel_l1']:.1f} ({d['pixel_ratio']:.2f}x)")
    return "\n".join(lines)
