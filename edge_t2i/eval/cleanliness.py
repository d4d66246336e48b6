"""Clean-image figures of generated images: blotchy backgrounds, halos, second objects.

The shapes dataset draws one anti-aliased object on an exactly flat black, white or gray
background, so on real images each figure below is 0 (or, for the halo, rounding-level): what
a generator adds is an artifact. All figures read a uint8 [H, W, 3] RGB image and are in
units of 1/255 (pixel levels) or fractions of images. They build on the oracle's view of an
image (`oracle.border_background`, `oracle.foreground_mask`): the background is the median
of the border pixels, the foreground every pixel more than `oracle.FOREGROUND_DIFF` levels
away from it in some channel, and *the object* the largest coloured 8-connected foreground
component (see "second object"; the largest component of any kind when none is coloured).

Definitions (issue 13; the same in checkpoints/shapes64/README.md):
- background deviation: the mean over pixels farther than RING_PX from the object (outside
  the object dilated by a disc of radius RING_PX) of |pixel - border median|, averaged over the
  three channels. Levels (1/255). A flat background gives exactly 0.
- blotchy: an image whose background deviation exceeds BLOTCH_LEVELS (6/255).
- halo: over the edge band (pixels within HALO_PX of the object's outline, inside or outside),
  the mean distance of each pixel from the nearest mix of the object's colour (median of the
  object's interior, HALO_CORE_PX in from its outline) and the background colour (border
  median). The data's anti-aliased edge is such a mix by construction (each pixel is
  coverage * object + (1 - coverage) * background), so a clean edge scores rounding error only;
  a dark or light rim, a colour fringe or a smear is off that line. Distance: Euclidean in RGB
  divided by sqrt(3), so a rim offset by d levels in every channel scores d. A blotch that
  touches the object's edge counts too (the band's outer 2 px lie on it): the edge is not the
  data's edge there either.
- second object: an image with more than one coloured foreground component: at least
  `oracle.MIN_AREA_FRACTION` of the image (the oracle's speckle limit) and a median HSV
  saturation of at least `oracle.MIN_SATURATION`. Every object colour of the data is saturated
  (>= 0.5) and every background achromatic, so a light or dark patch (a blotch, measured by the
  background deviation) is not an object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge_t2i.errors import DataError
from edge_t2i.eval import oracle

RING_PX = 3  # the ring around the object that the background deviation leaves out
BLOTCH_LEVELS = 6.0  # mean deviation (1/255) above which a background is blotchy (issue 13)
HALO_PX = 2  # anti-aliasing touches 1 px on each side of the outline; rims are 1-2 px wide
HALO_CORE_PX = 3
HALOED_LEVELS = 6.0  # an image whose halo exceeds this counts as haloed (same bar as blotchy)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _check(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise DataError(f"expected a uint8 [H, W, 3] RGB image, got {getattr(img, 'dtype', type(img))} "
                        f"{getattr(img, 'shape', '')}")


def foreground_components(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels int32 [H, W], areas int [K]) of the 8-connected components of `oracle.foreground_mask`;
    component k (1-based in `labels`) has area areas[k - 1] pixels."""
    _check(img)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(oracle.foreground_mask(img), connectivity=8)
    return labels, stats[1:n, cv2.CC_STAT_AREA]


def _coloured_components(img: np.ndarray, labels: np.ndarray, areas: np.ndarray) -> list[int]:
    """Labels (1-based) of the components of at least MIN_AREA_FRACTION of the image with a median HSV
    saturation of at least MIN_SATURATION, largest first."""
    saturation = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)[..., 1]
    big = np.nonzero(areas >= oracle.MIN_AREA_FRACTION * img.shape[0] * img.shape[1])[0]
    found = [k + 1 for k in big if np.median(saturation[labels == k + 1]) >= 255 * oracle.MIN_SATURATION]
    return sorted(found, key=lambda k: -areas[k - 1])


def object_mask(img: np.ndarray) -> np.ndarray | None:
    """uint8 [H, W]: 1 on the object, or None without foreground. The object is the largest coloured
    component (`object_count`), else the largest foreground component: a white blotch larger than the
    object on a gray background is not the object."""
    labels, areas = foreground_components(img)
    if len(areas) == 0:
        return None
    coloured = _coloured_components(img, labels, areas)
    best = coloured[0] if coloured else 1 + int(np.argmax(areas))
    return (labels == best).astype(np.uint8)


def object_count(img: np.ndarray) -> int:
    """Coloured foreground components: at least `oracle.MIN_AREA_FRACTION` of the image (speckle left out)
    with a median HSV saturation of at least `oracle.MIN_SATURATION` (a light or dark blotch is no object)."""
    labels, areas = foreground_components(img)
    return len(_coloured_components(img, labels, areas))


def background_deviation(img: np.ndarray) -> float:
    """Mean |pixel - border median| (levels, 1/255; channel mean) over pixels farther than RING_PX
    from the object; the whole image when there is no object. Raises DataError for a non-image."""
    mask = object_mask(img)
    diff = np.abs(img.astype(np.float32) - oracle.border_background(img)).mean(axis=2)
    if mask is None:
        return float(diff.mean())
    outside = cv2.dilate(mask, _disc(RING_PX)) == 0
    return float(diff[outside].mean()) if outside.any() else 0.0


def _distance_to_segment(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [N]: RGB distance / sqrt(3) of each pixel (float [N, 3]) from the segment a-b."""
    v = b - a
    t = np.clip((pixels - a) @ v / max(float(v @ v), 1e-9), 0.0, 1.0)
    return np.linalg.norm(pixels - (a + t[:, None] * v), axis=1) / np.sqrt(3.0)


def halo(img: np.ndarray) -> float | None:
    """Mean distance (levels, 1/255) of the edge band's pixels from the object-background colour line
    (module docstring); None when the image has no object. Raises DataError for a non-image."""
    mask = object_mask(img)
    if mask is None:
        return None
    px = img.astype(np.float64)
    band = (cv2.dilate(mask, _disc(HALO_PX)) == 1) & (cv2.erode(mask, _disc(HALO_PX)) == 0)
    core = cv2.erode(mask, _disc(HALO_CORE_PX)).astype(bool)
    colour = np.median(px[core if core.sum() >= 4 else mask.astype(bool)], axis=0)
    background = oracle.border_background(img).astype(np.float64)
    return float(_distance_to_segment(px[band], background, colour).mean())


@dataclass(frozen=True)
class Cleanliness:
    """Clean-image figures over `count` images (module docstring for the definitions).

    blotchy_fraction, haloed_fraction, second_object_fraction: fractions 0..1 of the images;
    background_deviation, halo: means over images in levels (1/255); halo over the images with an
    object (`with_object` of them; NaN when none has one)."""

    blotchy_fraction: float
    background_deviation: float
    halo: float
    haloed_fraction: float
    second_object_fraction: float
    with_object: int
    count: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure_cleanliness(images: np.ndarray | Iterable[np.ndarray]) -> Cleanliness:
    """The clean-image figures of uint8 [N, H, W, 3] RGB images. Raises DataError for no images or non-images."""
    deviations, halos, counts = [], [], []
    for img in images:
        deviations.append(background_deviation(img))
        h = halo(img)
        if h is not None:
            halos.append(h)
        counts.append(object_count(img))
    if not deviations:
        raise DataError("nothing to measure: no images")
    dev, hal = np.array(deviations), np.array(halos) if halos else np.zeros(0)
    return Cleanliness(
        blotchy_fraction=float((dev > BLOTCH_LEVELS).mean()),
        background_deviation=float(dev.mean()),
        halo=float(hal.mean()) if len(hal) else float("nan"),
        haloed_fraction=float((hal > HALOED_LEVELS).sum() / len(dev)),
        second_object_fraction=float((np.array(counts) > 1).mean()),
        with_object=len(hal),
        count=len(dev),
    )
