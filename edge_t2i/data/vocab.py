"""The attribute vocabulary of the shapes dataset: canonical names and how they look."""

from __future__ import annotations

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
COLORS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
SIZES = ("small", "large")
POSITIONS = (
    "top-left", "top", "top-right",
    "left", "center", "right",
    "bottom-left", "bottom", "bottom-right",
)  # row-major over a 3x3 grid: index = 3 * row + column
BACKGROUNDS = ("black", "white", "gray")
ATTRIBUTES = ("color", "shape", "size", "position")

# Hue in degrees, saturation and value (0..1) of each color's centre. Hues are at
# least 30 degrees apart so the +-HUE_JITTER drawing jitter never crosses a boundary.
COLOR_HSV = {
    "red": (0.0, 0.90, 0.95),
    "orange": (30.0, 0.95, 1.00),
    "yellow": (58.0, 0.95, 0.95),
    "green": (120.0, 0.85, 0.80),
    "cyan": (182.0, 0.90, 0.90),
    "blue": (228.0, 0.90, 0.95),
    "purple": (278.0, 0.75, 0.80),
    "pink": (325.0, 0.55, 1.00),
}
HUE_JITTER = 6.0
BACKGROUND_RGB = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128)}

# Object half-extent (circumradius) as a fraction of the image side. The gap
# between the two size classes is what the oracle's size threshold sits in.
SIZE_RADIUS = {"small": (0.12, 0.14), "large": (0.21, 0.23)}
SIZE_THRESHOLD = 0.175  # circumradius / side separating small from large
ROTATION_JITTER = 12.0  # degrees

# (shape, color) pairs never shown in the train split: the test split measures
# compositional generalisation on them. Each shape and each color appears at least once.
HELDOUT_PAIRS = (
    ("circle", "purple"),
    ("square", "yellow"),
    ("triangle", "blue"),
    ("star", "green"),
    ("hexagon", "pink"),
    ("cross", "red"),
    ("circle", "orange"),
    ("star", "cyan"),
)


def hsv_to_rgb(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    """HSV (degrees, 0..1, 0..1) to 8-bit RGB."""
    h = (hue % 360.0) / 60.0
    c = val * sat
    x = c * (1 - abs(h % 2 - 1))
    m = val - c
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    return tuple(int(round(255 * (v + m))) for v in (r, g, b))  # type: ignore[return-value]
