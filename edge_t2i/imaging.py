"""Images as the package hands them around: uint8 [N, H, W, 3] RGB, or [N, H, W, 4] premultiplied RGBA for
sprite generators (`ModelConfig.channels` 4).

One mapping from the generator's float output to pixels, one PNG writer (straight alpha in the file, as PNG
wants), one "over" compositing and one contact-sheet (grid) layout, used by data, training samples, the runtime,
the gate's compare.png and the CLI.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_t2i import _io
from edge_t2i.errors import DataError


def to_uint8(images: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Generator output float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3] (RGB, or BGR for OpenCV); a 4-channel
    (premultiplied RGBA) output gives uint8 [B, H, W, 4] (RGBA, or BGRA).

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
        if bgr and out.shape[-1] == 4:
            return np.ascontiguousarray(out[..., [2, 1, 0, 3]])
        return np.ascontiguousarray(out[..., ::-1] if bgr else out)
    order = (2, 1, 0) if bgr else (0, 1, 2)
    out = np.empty((planes.shape[0], planes.shape[2], planes.shape[3], 3), np.uint8)
    for i, p in enumerate(planes):
        cv2.merge([p[c] for c in order], dst=out[i])
    return out


def composite(images: np.ndarray, background: tuple[int, int, int] | np.ndarray = (255, 255, 255)) -> np.ndarray:
    """Premultiplied RGBA uint8 [..., H, W, 4] over an opaque `background` (an RGB colour, or uint8 [H, W, 3])
    -> uint8 [..., H, W, 3]: out = rgb + (1 - alpha) * background (Porter-Duff "over"). RGB input is returned
    unchanged."""
    if images.shape[-1] == 3:
        return images
    bg = np.asarray(background, np.float32)
    a = images[..., 3:].astype(np.float32) / 255.0
    return np.clip(np.rint(images[..., :3].astype(np.float32) + (1.0 - a) * bg), 0, 255).astype(np.uint8)


def checkerboard(side: int, cell: int = 8) -> np.ndarray:
    """uint8 [side, side, 3]: the light grey checks image editors show behind transparency."""
    y, x = np.indices((side, side)) // cell
    return np.where(((x + y) % 2 == 0)[..., None], 204, 255).astype(np.uint8).repeat(3, 2)


def unpremultiply(images: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA uint8 [..., 4] -> straight-alpha RGBA uint8 (what PNG files hold)."""
    a = images[..., 3:].astype(np.float32)
    rgb = np.where(a > 0, images[..., :3].astype(np.float32) * 255.0 / np.maximum(a, 1.0), 0.0)
    return np.concatenate([np.clip(np.rint(rgb), 0, 255).astype(np.uint8), images[..., 3:]], -1)


def image_grid(images: np.ndarray, columns: int = 8, labels: list[str] | None = None,
               scale: int = 2) -> np.ndarray:
    """Tile uint8 [N, H, W, 3] images into one RGB grid (nearest-neighbour upscaled by `scale`),
    with an optional caption under each tile. Premultiplied RGBA [N, H, W, 4] tiles are shown over a checkerboard."""
    n, h, w, _ = images.shape
    if images.shape[-1] == 4:
        images = composite(images, checkerboard(h, max(2, h // 8)))
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
    """The bytes of an RGB uint8 [H, W, 3] image: PNG, or JPEG/WebP/BMP by the file name's suffix. A
    premultiplied RGBA [H, W, 4] image is written with straight alpha (PNG and WebP; JPEG and BMP get it
    composited over white). Raises DataError if it cannot be encoded."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    ext = f".{suffix}" if suffix in ("jpg", "jpeg", "webp", "bmp") else ".png"
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        if ext in (".png", ".webp"):
            ok, buf = cv2.imencode(ext, cv2.cvtColor(unpremultiply(rgb), cv2.COLOR_RGBA2BGRA))
            if not ok:
                raise DataError(f"could not encode an image for {path}")
            return buf.tobytes()
        rgb = composite(rgb)
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
