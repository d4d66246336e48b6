"""The procedural "shapes" dataset: one anti-aliased object per image, captioned.

Everything is a pure function of (seed, split, index), so any image can be
re-made exactly and datasets of any size are reproducible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cache

import cv2
import numpy as np

from edge_t2i.data import vocab
from edge_t2i.data.captions import make_caption
from edge_t2i.errors import DataError

SPLITS = ("train", "val", "test")
_SUBPIXEL = 4  # cv2.fillPoly shift: coordinates carry 4 fractional bits


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    color: str
    size: str
    position: str


@dataclass(frozen=True)
class ShapeSample:
    """One dataset record: the image and what it shows."""

    image: np.ndarray  # uint8 [H, W, 3] RGB
    text: str
    objects: tuple[ShapeObject, ...]
    background: str
    heldout: bool  # its (shape, color) pair is never in the train split


@cache
def unit_polygon(shape: str) -> np.ndarray:
    """Vertices of `shape` with circumradius 1, centred on its area centroid."""
    if shape == "circle":
        a = np.linspace(0, 2 * math.pi, 96, endpoint=False)
    elif shape == "square":
        a = np.linspace(0, 2 * math.pi, 4, endpoint=False) + math.pi / 4
    elif shape == "triangle":
        a = np.linspace(0, 2 * math.pi, 3, endpoint=False) - math.pi / 2
    elif shape == "hexagon":
        a = np.linspace(0, 2 * math.pi, 6, endpoint=False)
    elif shape == "star":
        a = np.linspace(0, 2 * math.pi, 10, endpoint=False) - math.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return _center(np.stack([r * np.cos(a), r * np.sin(a)], 1))
    elif shape == "cross":
        w = 0.34  # half-width of each bar, relative to the circumradius of the bar ends
        pts = [(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1),
               (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w), (-w, -1)]
        p = np.array(pts, dtype=np.float64)
        return _center(p / np.hypot(1, w))
    else:
        raise DataError(f"unknown shape '{shape}'; valid: {', '.join(vocab.SHAPES)}")
    return _center(np.stack([np.cos(a), np.sin(a)], 1))


def _center(p: np.ndarray) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return p - np.array([cx, cy])


def polygon_points(shape: str, center: tuple[float, float], radius: float, angle_deg: float) -> np.ndarray:
    """Integer vertex coordinates (with `_SUBPIXEL` fractional bits) for cv2.fillPoly."""
    t = math.radians(angle_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    p = unit_polygon(shape) @ rot.T * radius + np.asarray(center)
    return np.round(p * (1 << _SUBPIXEL)).astype(np.int32)


def draw_object(image: np.ndarray, shape: str, rgb: tuple[int, int, int],
                center: tuple[float, float], radius: float, angle_deg: float) -> None:
    """Draw one filled, anti-aliased object into `image` in place."""
    pts = polygon_points(shape, center, radius, angle_deg)
    cv2.fillPoly(image, [pts], rgb, lineType=cv2.LINE_AA, shift=_SUBPIXEL)


def _cell_center(rng: np.random.Generator, position: str, radius: float, side: int) -> tuple[float, float]:
    """A jittered centre inside the position's grid cell that keeps the object in frame."""
    idx = vocab.POSITIONS.index(position)
    row, col = divmod(idx, 3)
    cell = side / 3.0
    margin = 0.22 * cell  # keeps the centroid clear of cell borders
    out = []
    for k in (col, row):
        lo = max(k * cell + margin, radius + 1.0)
        hi = min((k + 1) * cell - margin, side - radius - 1.0)
        out.append(float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2)
    return out[0], out[1]


def random_background(rng: np.random.Generator) -> str:
    """The dataset's background rule: black, white or gray with equal probability, whatever the caption."""
    return vocab.BACKGROUNDS[rng.integers(len(vocab.BACKGROUNDS))]


def draw_image(rng: np.random.Generator, obj: ShapeObject, background: str, resolution: int) -> np.ndarray:
    """uint8 [resolution, resolution, 3] RGB: `obj` on a flat `background`, with the jitter the dataset draws
    from `rng` (radius within its size class, centre within its cell, rotation within +-ROTATION_JITTER
    degrees, colour within HUE_JITTER), the same draws in the same order as `render_sample`.
    Raises DataError for an unknown shape (sizes, positions, colours and backgrounds: vocab's names)."""
    lo, hi = vocab.SIZE_RADIUS[obj.size]
    radius = float(rng.uniform(lo, hi)) * resolution
    center = _cell_center(rng, obj.position, radius, resolution)
    angle = float(rng.uniform(-vocab.ROTATION_JITTER, vocab.ROTATION_JITTER))
    hue, sat, val = vocab.COLOR_HSV[obj.color]
    rgb = vocab.hsv_to_rgb(hue + rng.uniform(-vocab.HUE_JITTER, vocab.HUE_JITTER),
                           min(1.0, sat + rng.uniform(-0.05, 0.05)),
                           min(1.0, val + rng.uniform(-0.05, 0.05)))
    image = np.empty((resolution, resolution, 3), np.uint8)
    image[:] = vocab.BACKGROUND_RGB[background]
    draw_object(image, obj.shape, rgb, center, radius, angle)
    return image


def render_sample(rng: np.random.Generator, resolution: int, split: str,
                  novel_captions: bool = False) -> ShapeSample:
    """Draw one random captioned sample from `rng` (split decides the (shape, color) pairs)."""
    heldout = set(vocab.HELDOUT_PAIRS)
    while True:
        shape = vocab.SHAPES[rng.integers(len(vocab.SHAPES))]
        color = vocab.COLORS[rng.integers(len(vocab.COLORS))]
        is_heldout = (shape, color) in heldout
        if not (split == "train" and is_heldout):
            break
    size = vocab.SIZES[rng.integers(2)]
    position = vocab.POSITIONS[rng.integers(9)]
    background = random_background(rng)
    obj = ShapeObject(shape, color, size, position)
    image = draw_image(rng, obj, background, resolution)
    text = make_caption(rng, shape, color, size, position, background, novel=novel_captions)
    return ShapeSample(image, text, (obj,), background, is_heldout)


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index])


def iter_samples(count: int, seed: int = 0, split: str = "train", resolution: int = 64,
                 start: int = 0, novel_captions: bool = False) -> Iterator[ShapeSample]:
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    if resolution < 16:
        raise DataError(f"resolution must be at least 16 px, got {resolution}")
    for i in range(start, start + count):
        yield render_sample(sample_rng(seed, split, i), resolution, split, novel_captions)


def record(sample: ShapeSample, file_name: str) -> dict:
    """The metadata.jsonl row of a sample."""
    return {
        "file_name": file_name,
        "text": sample.text,
        "objects": [asdict(o) for o in sample.objects],
        "background": sample.background,
        "heldout": sample.heldout,
    }


def _render_chunk(args: tuple[int, int, int, str, int, str, bool]) -> list[dict]:
    start, count, seed, split, resolution, out_dir, novel = args
    rows = []
    for offset, sample in enumerate(iter_samples(count, seed, split, resolution, start, novel)):
        name = f"{start + offset:06d}.png"
        cv2.imwrite(os.path.join(out_dir, name), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
        rows.append(record(sample, name))
    return rows
