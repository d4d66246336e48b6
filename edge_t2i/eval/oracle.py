"""The attribute oracle: classical OpenCV judgement of what an image shows.

No learned model, so a generator cannot be trained to fool it. It must also meet
generated images (blobs, speckle, self-intersecting contours) and call them
wrong rather than crash a long evaluation.

Pipeline: background from the border -> foreground mask -> largest component ->
color (circular mean hue), shape (best IoU against rotated templates of equal
area), size (circumradius), position (centroid cell).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge_t2i.data import vocab
from edge_t2i.data.captions import parse_caption
from edge_t2i.data.imagefolder import ImageFolder, read_imagefolder
from edge_t2i.data.shapes import unit_polygon
from edge_t2i.errors import DataError

UNKNOWN = "unknown"
FOREGROUND_DIFF = 48  # max channel difference from the background that counts as object
MIN_AREA_FRACTION = 0.004  # smaller components are speckle
MAX_AREA_FRACTION = 0.35  # larger "objects" are noise or a broken background
MIN_SATURATION = 0.25  # below this the object has no hue to judge
MIN_SHAPE_IOU = 0.70  # a blob that matches no template this well is no shape
TEMPLATE_SIDE = 96  # shapes are compared on a crop resampled to this size
_ANGLES = np.arange(-30, 31, 5)


@dataclass(frozen=True)
class Judgement:
    """What the oracle sees in one image."""

    color: str
    shape: str
    size: str
    position: str
    background: str
    shape_iou: float = 0.0


def border_background(img: np.ndarray) -> np.ndarray:
    """float32 [3]: the background colour of a uint8 [H, W, 3] image, the median of its border pixels."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float32)
    return np.median(border, axis=0)


def background_difference(img: np.ndarray) -> np.ndarray:
    """int16 [H, W]: each pixel's largest channel difference from the border background."""
    return np.abs(img.astype(np.int16) - border_background(img).astype(np.int16)).max(axis=2)


def foreground_mask(img: np.ndarray) -> np.ndarray:
    """uint8 [H, W]: 1 where a pixel differs from the border background by more than FOREGROUND_DIFF."""
    return (background_difference(img) > FOREGROUND_DIFF).astype(np.uint8)


def _background(img: np.ndarray) -> tuple[np.ndarray, str]:
    bg = border_background(img)
    brightness = float(bg.mean())
    chroma = float(bg.max() - bg.min())
    if chroma > 40:
        name = UNKNOWN
    elif brightness < 64:
        name = "black"
    elif brightness > 192:
        name = "white"
    else:
        name = "gray"
    return bg, name


def background_name(img: np.ndarray) -> str:
    """The background a uint8 [H, W, 3] RGB image shows, from its border median: black, white, gray, or
    UNKNOWN (a coloured border)."""
    return _background(img)[1]


def _largest_component(mask: np.ndarray) -> np.ndarray | None:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == best).astype(np.uint8)


def _color(img: np.ndarray, mask: np.ndarray) -> str:
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8))
    if inner.sum() < 4:
        inner = mask
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)[inner.astype(bool)].astype(np.float32)
    sat = hsv[:, 1] / 255.0
    if float(np.median(sat)) < MIN_SATURATION:
        return UNKNOWN
    angle = hsv[:, 0] / 256.0 * 2 * math.pi
    hue = math.degrees(math.atan2(float((np.sin(angle) * sat).sum()), float((np.cos(angle) * sat).sum()))) % 360
    dist = {c: abs((hue - h + 180) % 360 - 180) for c, (h, _, _) in vocab.COLOR_HSV.items()}
    return min(dist, key=dist.__getitem__)


def _shape(mask: np.ndarray) -> tuple[str, float]:
    """Best-matching shape by IoU with equal-area templates over rotations."""
    area = float(mask.sum())
    m = cv2.moments(mask, binaryImage=True)
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    # Resample a square crop around the centroid so small objects get a smooth outline.
    ys, xs = np.nonzero(mask)
    half = max(4.0, 1.15 * float(np.sqrt(((xs - cx) ** 2 + (ys - cy) ** 2).max())) + 1.0)
    scale = TEMPLATE_SIDE / (2 * half)
    affine = np.array([[scale, 0, TEMPLATE_SIDE / 2 - cx * scale],
                       [0, scale, TEMPLATE_SIDE / 2 - cy * scale]], np.float64)
    crop = cv2.warpAffine(mask.astype(np.float32), affine, (TEMPLATE_SIDE, TEMPLATE_SIDE),
                          flags=cv2.INTER_LINEAR) > 0.5
    target_area = area * scale * scale
    best, best_iou = UNKNOWN, 0.0
    for shape in vocab.SHAPES:
        radius = math.sqrt(target_area / _unit_area(shape))
        for angle in (_ANGLES if shape != "circle" else (0,)):
            tmpl = np.zeros((TEMPLATE_SIDE, TEMPLATE_SIDE), np.uint8)
            t = math.radians(angle)
            rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
            pts = unit_polygon(shape) @ rot.T * radius + TEMPLATE_SIDE / 2
            cv2.fillPoly(tmpl, [np.round(pts * 16).astype(np.int32)], 1, shift=4)
            tb = tmpl.astype(bool)
            union = int((tb | crop).sum())
            iou = int((tb & crop).sum()) / union if union else 0.0
            if iou > best_iou:
                best, best_iou = shape, iou
    if best_iou < MIN_SHAPE_IOU:
        return UNKNOWN, best_iou
    return best, best_iou


def _unit_area(shape: str) -> float:
    p = unit_polygon(shape)
    x, y = p[:, 0], p[:, 1]
    return abs(float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())) / 2


def object_component(image: np.ndarray) -> np.ndarray | None:
    """uint8 [H, W]: the object as `judge` sees it in a uint8 [H, W, 3] image, or None without foreground.

    The largest 8-connected component of the pixels that differ from the border background by more than
    half the object's contrast (the 99.5th percentile of `background_difference`; at least
    FOREGROUND_DIFF), opened with a 2x2 square from 48 px up (speckle and 1 px bridges)."""
    diff = background_difference(image)
    # Half the object's contrast: anti-aliased rims count as object only when more
    # than half covered, whatever the contrast between object and background.
    threshold = max(FOREGROUND_DIFF, 0.5 * float(np.percentile(diff, 99.5)))
    mask = (diff > threshold).astype(np.uint8)
    if image.shape[0] >= 48:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return _largest_component(mask)


def judge(image: np.ndarray) -> Judgement:
    """Judge one uint8 RGB image [H, W, 3]. Never raises on odd content."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"oracle expects uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
    side = image.shape[0]
    _, bg_name = _background(image)
    comp = object_component(image)
    total = image.shape[0] * image.shape[1]
    if comp is None or not (MIN_AREA_FRACTION * total <= comp.sum() <= MAX_AREA_FRACTION * total):
        return Judgement(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, bg_name)
    try:
        shape, iou = _shape(comp)
        pts = cv2.findNonZero(comp)
        _, radius = cv2.minEnclosingCircle(pts)
        m = cv2.moments(comp, binaryImage=True)
        cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    except cv2.error:  # degenerate geometry: call it wrong, do not stop the evaluation
        return Judgement(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, bg_name)
    size = "large" if radius / side > vocab.SIZE_THRESHOLD else "small"
    col = min(2, int(cx / (image.shape[1] / 3)))
    row = min(2, int(cy / (image.shape[0] / 3)))
    position = vocab.POSITIONS[3 * row + col]
    return Judgement(_color(image, comp), shape, size, position, bg_name, round(iou, 4))


def expected_attributes(row: dict) -> dict[str, str | None]:
    """Intended attributes of a metadata row: its `objects` if present, else parsed from `text`."""
    objects = row.get("objects")
    if isinstance(objects, list) and objects and isinstance(objects[0], dict):
        exp: dict[str, str | None] = {a: objects[0].get(a) for a in vocab.ATTRIBUTES}
        exp["background"] = row.get("background")
        return exp
    cap = parse_caption(row.get("text", ""))
    return {"color": cap.color, "shape": cap.shape, "size": cap.size, "position": cap.position,
            "background": cap.background}


@dataclass(frozen=True)
class Scores:
    """Accuracy per attribute (fractions 0..1) over `count` images."""

    color: float
    shape: float
    size: float
    position: float
    all: float
    background: float | None
    count: int
    judged: int = -1  # images whose caption names all four attributes, or names one the image gets wrong

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        bg = f"  background {self.background:.1%}" if self.background is not None else ""
        return (f"color {self.color:.1%}  shape {self.shape:.1%}  size {self.size:.1%}  "
                f"position {self.position:.1%}  all {self.all:.1%}{bg}  (n={self.count}"
                + (f"; all four judged on {self.judged}: the other captions leave an attribute unnamed or unread)"
                   if 0 <= self.judged < self.count else ")"))


SCORED = (*vocab.ATTRIBUTES, "background")


def verdicts(judgements: Iterable[Judgement], expected: Iterable[dict[str, str | None]]) -> dict[str, np.ndarray]:
    """Per image: int8 [N] for each attribute (1 right, 0 wrong, -1 not named by the caption) and
    "all" (1 when all four attributes but the background are right, 0 when one is wrong, -1 when the caption
    leaves one unnamed or unread: unknown, never counted as right). What `score` averages, and what the quality
    gate pairs image by image."""
    rows = []
    for j, exp in zip(judgements, expected, strict=True):
        row = {a: -1 if exp.get(a) is None else int(getattr(j, a) == exp.get(a)) for a in SCORED}
        four = [row[a] for a in vocab.ATTRIBUTES]
        row["all"] = 0 if 0 in four else (-1 if -1 in four else 1)
        rows.append(row)
    if not rows:
        raise DataError("nothing to score: no images")
    return {key: np.array([r[key] for r in rows], np.int8) for key in (*SCORED, "all")}


def score(judgements: Iterable[Judgement], expected: Iterable[dict[str, str | None]]) -> Scores:
    """Compare judgements with intended attributes. An attribute the caption does not name (or the caption parser
    cannot read: "a crimson blob") is not scored; `all` is over the images whose captions name all four
    (`judged` of `count`), plus those with a named attribute wrong. Raises DataError if there are no images."""
    v = verdicts(judgements, expected)

    def frac(attr: str) -> float:
        named = v[attr] >= 0
        return float(v[attr][named].mean()) if named.any() else 0.0

    bg = frac("background") if (v["background"] >= 0).any() else None
    return Scores(frac("color"), frac("shape"), frac("size"), frac("position"), frac("all"), bg,
                  len(v["all"]), int((v["all"] >= 0).sum()))


def score_images(images: np.ndarray | Iterable[np.ndarray], rows: Iterable[dict]) -> Scores:
    """Judge uint8 [N, H, W, 3] images against metadata rows (`objects`, or a caption in `text`).

    The one batch-scoring entry point: the CLI's eval, quality and training use it.
    Raises: DataError if there are no images or they are not uint8 RGB."""
    return score([judge(img) for img in images], [expected_attributes(r) for r in rows])


def image_verdicts(images: np.ndarray | Iterable[np.ndarray], rows: Iterable[dict]) -> dict[str, np.ndarray]:
    """`verdicts` of uint8 [N, H, W, 3] images against metadata rows (what the gate pairs)."""
    return verdicts([judge(img) for img in images], [expected_attributes(r) for r in rows])


def evaluate_folder(root: str | os.PathLike[str], limit: int | None = None) -> Scores:
    """Score every image of an imagefolder against its metadata (objects, or parsed text)."""
    folder: ImageFolder = read_imagefolder(root)
    n = len(folder) if limit is None else min(limit, len(folder))
    return score_images((folder.image(i) for i in range(n)), folder.records[:n])
