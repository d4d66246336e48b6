"""What seeds change: the spread of the object's position and rotation, and the background, over seeds.

The shapes dataset leaves three things to chance for a caption: where the object sits within its
grid cell (uniform over the cell, less a margin: a standard deviation near 3.5 px per axis at
64 px), its rotation (uniform in +-`vocab.ROTATION_JITTER` degrees: 6.9 degrees) and, when the
caption names none, the background (black, white or gray, equally likely:
`shapes.random_background`). A generator should move them from seed to seed as the data does.

Definitions (issue 13; the same in checkpoints/shapes64/README.md), for one caption over N seeds:
- position spread: sqrt((s(x)^2 + s(y)^2) / 2) in pixels, s the robust standard deviation
  (`robust_std`: 1.4826 x the median absolute deviation, the standard deviation for normally
  distributed values) of the object's centroid (first image moments of the oracle's object,
  `oracle.object_component`), over the images the oracle reads with the caption's shape and
  position (a wrong cell is an accuracy error, not spread);
- rotation spread: the robust standard deviation, in degrees, of the object's orientation modulo
  its rotational symmetry (360/n degrees for an n-fold shape; circles have none and are left out),
  taken about the circular mean, over the same images. Orientation: the phase of the complex
  moment sum((x + iy)^n) of the object's pixels about their centroid, against the same moment of
  the unrotated template (Abu-Mostafa & Psaltis 1984): second moments cannot see the orientation
  of a square, triangle, star or hexagon (their inertia is isotropic), the n-th one can. Error on
  the data's own images: about 1 degree RMS at 64 px. A mask whose n-fold structure
  (|sum z^n| / sum |z|^n) is under half the template's (a blob) has no orientation.
  Robust, because a generator that draws the same angle for 31 seeds and a malformed or 30-degree
  turned object for the 32nd has not learned the data's jitter, yet the plain standard deviation
  of those 32 would read as most of the data's. For the data's uniform jitter the robust figure is
  1.28 x the plain one (uniform +-12 degrees: 8.9 against 6.9); the ratio compares like with like;
- background distribution: the total variation distance, over {black, white, gray, unknown} as
  the oracle reads them, between the generated images' backgrounds and the data's distribution.

Each figure is measured the same way on N real images of the same caption (`draw_image` with the
dataset's jitter); the report gives generated / data for the spreads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import cv2
import numpy as np

from edge_t2i.data import vocab
from edge_t2i.data.shapes import unit_polygon
from edge_t2i.errors import DataError
from edge_t2i.eval import oracle

# n of each shape's n-fold rotational symmetry (0: any rotation maps it onto itself).
ROTATIONAL_SYMMETRY = {"circle": 0, "square": 4, "triangle": 3, "star": 5, "hexagon": 6, "cross": 4}
BACKGROUND_CLASSES = (*vocab.BACKGROUNDS, oracle.UNKNOWN)
# shapes.random_background draws each background with equal probability, whatever the caption.
DATA_BACKGROUNDS = {**{b: 1.0 / len(vocab.BACKGROUNDS) for b in vocab.BACKGROUNDS}, oracle.UNKNOWN: 0.0}


MIN_SYMMETRY = 0.5  # n-fold structure below this share of the template's: no orientation
MAD_TO_STD = 1.4826  # median absolute deviation -> standard deviation of a normal distribution


def _complex_moment(mask: np.ndarray, fold: int) -> tuple[complex, float]:
    """(sum z^n, its n-fold structure |sum z^n| / sum |z|^n in 0..1) of a mask's pixels z about their centroid."""
    ys, xs = np.nonzero(mask)
    z = (xs - xs.mean()) + 1j * (ys - ys.mean())
    moment = complex((z ** fold).sum())
    scale = float((np.abs(z) ** fold).sum())
    return moment, abs(moment) / scale if scale > 0 else 0.0


@cache
def _template_moment(shape: str, fold: int) -> tuple[complex, float]:
    """The n-th complex moment of `shape` drawn unrotated at a 200 px circumradius."""
    side = 512
    img = np.zeros((side, side), np.uint8)
    pts = unit_polygon(shape) * 200 + side / 2
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], 1, shift=4)
    return _complex_moment(img, fold)


def orientation(mask: np.ndarray, shape: str) -> float | None:
    """Rotation in degrees, in [-180/n, 180/n), of a uint8 [H, W] object mask of `shape` relative to the
    dataset's unrotated drawing (the same sign as `draw_object`'s angle); None for a circle, an empty mask
    or a mask without n-fold structure. Raises DataError for an unknown shape."""
    if shape not in ROTATIONAL_SYMMETRY:
        raise DataError(f"unknown shape '{shape}'; valid: {', '.join(ROTATIONAL_SYMMETRY)}")
    fold = ROTATIONAL_SYMMETRY[shape]
    if fold == 0 or not mask.any():
        return None
    moment, structure = _complex_moment(mask, fold)
    reference, reference_structure = _template_moment(shape, fold)
    if structure < MIN_SYMMETRY * reference_structure:
        return None
    turn = math.degrees(np.angle(moment / reference)) / fold
    period = 360.0 / fold
    return (turn + period / 2) % period - period / 2


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) in pixels of a non-empty uint8 [H, W] mask's centroid (image coordinates). Raises DataError if empty."""
    m = cv2.moments(mask, binaryImage=True)
    if m["m00"] == 0:
        raise DataError("centroid of an empty mask")
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


def robust_std(values: Sequence[float]) -> float:
    """MAD_TO_STD x the median absolute deviation from the median: the standard deviation for normally
    distributed values, unmoved by a few outliers. NaN for fewer than 2 values."""
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return float("nan")
    return float(MAD_TO_STD * np.median(np.abs(v - np.median(v))))


def circular_robust_std(angles_deg: Sequence[float], period_deg: float) -> float:
    """`robust_std` in degrees of angles taken modulo `period_deg`, after unwrapping them about their circular
    mean (so 29 and -29 degrees of a 60-degree period are 2 apart, not 58). NaN for fewer than 2 angles."""
    if len(angles_deg) < 2:
        return float("nan")
    a = np.asarray(angles_deg, np.float64)
    mean = math.degrees(np.angle(np.exp(1j * np.radians(a) * 360.0 / period_deg).mean())) * period_deg / 360.0
    return robust_std((a - mean + period_deg / 2) % period_deg - period_deg / 2)


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    """0.5 * sum |p - q| over the union of two distributions' keys: 0 equal, 1 disjoint."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


@dataclass(frozen=True)
class SeedStatistics:
    """One caption over `count` images: position spread (px) over the `used` images the oracle reads with
    the caption's shape and position, rotation spread (degrees) over the `oriented` ones among them with an
    orientation (NaN for circles or fewer than 2)."""

    position_std: float
    rotation_std: float
    used: int
    oriented: int
    count: int


def seed_statistics(images: np.ndarray | Sequence[np.ndarray], shape: str, position: str) -> SeedStatistics:
    """Position and rotation spread of uint8 [N, H, W, 3] images of one caption (module docstring).
    Raises DataError for non-images or an unknown shape."""
    xs, ys, angles, count = [], [], [], 0
    for img in images:
        count += 1
        j = oracle.judge(img)
        mask = oracle.object_component(img)
        if mask is None or j.shape != shape or j.position != position:
            continue
        x, y = centroid(mask)
        xs.append(x)
        ys.append(y)
        angle = orientation(mask, shape)
        if angle is not None:
            angles.append(angle)
    fold = ROTATIONAL_SYMMETRY[shape]
    pos = math.sqrt((robust_std(xs) ** 2 + robust_std(ys) ** 2) / 2) if len(xs) >= 2 else float("nan")
    rot = circular_robust_std(angles, 360.0 / fold) if fold else float("nan")
    return SeedStatistics(float(pos), rot, len(xs), len(angles), count)


def background_distribution(images: np.ndarray | Sequence[np.ndarray]) -> dict[str, float]:
    """Share of uint8 [N, H, W, 3] images per background (`oracle.background_name`), over BACKGROUND_CLASSES.
    Raises DataError for no images."""
    names = Counter(oracle.background_name(img) for img in images)
    total = sum(names.values())
    if total == 0:
        raise DataError("no images to read backgrounds from")
    return {b: names.get(b, 0) / total for b in BACKGROUND_CLASSES}


def null_tv_quantile(reference: dict[str, float], seeds: int, captions: int, quantile: float = 0.95,
                     draws: int = 20000, seed: int = 0) -> float:
    """The `quantile` of the mean total variation between `seeds` draws per caption from `reference` and
    `reference` itself, averaged over `captions` captions (Monte Carlo, seeded): how far the data's own
    distribution strays on so few seeds, the bar a generator's background TV is held to."""
    keys = sorted(reference)
    p = np.array([reference[k] for k in keys], np.float64)
    counts = np.random.default_rng(seed).multinomial(seeds, p / p.sum(), size=(draws, captions))
    tv = 0.5 * np.abs(counts / seeds - p).sum(axis=2).mean(axis=1)
    return float(np.quantile(tv, quantile))


@dataclass(frozen=True)
class SeedSpread:
    """Spread over seeds of several captions, generated against data (module docstring).

    position_*: root mean square over captions of the per-caption position spread (px); rotation_*:
    the same over captions of shapes with a rotational symmetry (degrees); *_ratio: generated / data.
    background_tv_*: mean over captions of the total variation against DATA_BACKGROUNDS;
    background_tv_bar: what the data's distribution itself exceeds with 5% chance on this many seeds."""

    position_generated: float
    position_data: float
    position_ratio: float
    rotation_generated: float
    rotation_data: float
    rotation_ratio: float
    background_tv_generated: float
    background_tv_data: float
    background_tv_bar: float
    seeds: int
    captions: list[dict]

    def as_dict(self) -> dict:
        return asdict(self)


def _rms(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return math.sqrt(sum(x * x for x in v) / len(v)) if v else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) else float("nan")


def summarize_spread(prompts: Sequence[str], generated: Sequence[SeedStatistics], data: Sequence[SeedStatistics],
                     backgrounds: Sequence[tuple[dict[str, float], dict[str, float]]], seeds: int) -> SeedSpread:
    """Pool per-caption statistics of generated and real images (same captions, same order) into a SeedSpread;
    backgrounds[i] = (generated, data) background distributions of caption i over `seeds` images each."""
    if not prompts or not len(prompts) == len(generated) == len(data) == len(backgrounds):
        raise DataError(f"need matching statistics: {len(prompts)} prompts, {len(generated)} generated, "
                        f"{len(data)} data, {len(backgrounds)} background pairs")
    pos_g, pos_d = _rms([g.position_std for g in generated]), _rms([d.position_std for d in data])
    rot_g, rot_d = _rms([g.rotation_std for g in generated]), _rms([d.rotation_std for d in data])
    tvs = [(total_variation(g, DATA_BACKGROUNDS), total_variation(d, DATA_BACKGROUNDS)) for g, d in backgrounds]
    rows = [{"prompt": p, "generated": {**asdict(g), "backgrounds": bg[0], "background_tv": tv[0]},
             "data": {**asdict(d), "backgrounds": bg[1], "background_tv": tv[1]}}
            for p, g, d, bg, tv in zip(prompts, generated, data, backgrounds, tvs)]
    return SeedSpread(pos_g, pos_d, _ratio(pos_g, pos_d), rot_g, rot_d, _ratio(rot_g, rot_d),
                      float(np.mean([t[0] for t in tvs])), float(np.mean([t[1] for t in tvs])),
                      null_tv_quantile(DATA_BACKGROUNDS, seeds, len(prompts)), seeds, rows)
