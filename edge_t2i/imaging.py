"""Images as the package hands them around: uint8 [N, H, W, 3] RGB.

One mapping from the generator's float output to pixels, one PNG writer and one
contact-sheet (grid) layout, used by data, training samples, the runtime, the
gate's compare.png and the CLI.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_t2i import _io
from edge_t2i.errors import DataError


def to_uint8(images: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Generator output float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3] (RGB, or BGR for OpenCV).

    Values outside [-1, 1] are clipped; x maps to round((x + 1) * 127.5), rounding half to even. The arithmetic
    runs in place on one float copy, and OpenCV's merge interleaves the channels (a strided NumPy transpose of
    [B, 3, H, W] costs several times the arithmetic: a frame-time matter at batch 16). NaN maps to an unspecified
    value: the runtime checks the engine's output first (runtime/backends/base.py IOSpec)."""
    x = np.clip(images, -1.0, 1.0)
    x += 1.0
    x *= 127.5
    np.rint(x, out=x)
    planes = x.astype(np.uint8)
    if planes.ndim != 4 or planes.shape[1] != 3 or planes.shape[2] * planes.shape[3] == 0:
        out = planes.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(out[..., ::-1] if bgr else out)
    order = (2, 1, 0) if bgr else (0, 1, 2)
    out = np.empty((planes.shape[0], planes.shape[2], planes.shape[3], 3), np.uint8)
    for i, p in enumerate(planes):
        cv2.merge([p[c] for c in order], dst=out[i])
    return out


def image_grid(images: np.ndarray, columns: int = 8, labels: list[str] | None = None,
               scale: int = 2) -> np.ndarray:
    """Tile uint8 [N, H, W, 3] images into one RGB grid (nearest-neighbour upscaled by `scale`),
    with an optional caption under each tile."""
    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    th, tw = h * scale, w * scale
    label_h = 14 if labels else 0
    grid = np.full((rows * (th + label_h + 2), columns * (tw + 2), 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = r * (th + label_h + 2), c * (tw + 2)
        grid[y:y + th, x:x + tw] = cv2.resize(images[i], (tw, th), interpolation=cv2.INTER_NEAREST)
        if labels:
            cv2.putText(grid, labels[i][: max(4, tw // 6)], (x + 1, y + th + 10),
                        cv2.FONT_HERSHEY_PLAIN, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    return grid


def encode_image(path: _io.PathLike, rgb: np.ndarray) -> bytes:
    """The bytes of an RGB uint8 [H, W, 3] image: PNG, or JPEG/WebP/BMP by the file name's suffix.
    Raises DataError if it cannot be encoded."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    ext = f".{suffix}" if suffix in ("jpg", "jpeg", "webp", "bmp") else ".png"
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"could not encode an image for {path}")
    return buf.tobytes()


def save_png(path: _io.PathLike, rgb: np.ndarray):  # noqa: ANN201 - returns Path
    """Write an RGB uint8 [H, W, 3] image atomically (format by suffix, see `encode_image`)."""
    return _io.write_bytes(path, encode_image(path, rgb))


def save_grid(path: _io.PathLike, images: np.ndarray, columns: int = 8):  # noqa: ANN201 - returns Path
    """A grid PNG of uint8 [N, H, W, 3] images, tiles upscaled to about 128 px."""
    return save_png(path, image_grid(images, columns=columns, scale=max(1, 128 // images.shape[1])))
