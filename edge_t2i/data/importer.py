"""`edge-t2i data import`: a folder of captioned images (your own art) -> the training imagefolder.

Sources, in this order:
- a captions file `--captions FILE`: CSV with a header holding `file` (or `file_name`) and `caption`
  (or `text`), or JSON Lines with the same keys; paths relative to the source folder;
- the source folder's own `metadata.jsonl` (Hugging Face's imagefolder convention: `file_name`, `text`).
An optional `licence` column/key per row records where each image comes from; `--licence TEXT` covers
rows without one. `dataset_info.json` lists every licence with its row count, so the model card can.

Images are read with OpenCV (PNG, JPEG, WebP, BMP; 8- or 16-bit; grey, RGB or RGBA), resized to
`resolution` x `resolution` with the area filter on premultiplied alpha (so transparent pixels' colours
do not bleed into edges; non-square images are centred on a transparent, or for opaque sources white,
square first) and written as PNG: RGBA (straight alpha, the PNG convention) when any source pixel is
transparent, RGB otherwise. `ImageFolder.image` composites RGBA over white; `load_images(rgba=True)`
returns premultiplied RGBA for `train --rgba`.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from edge_t2i import _io
from edge_t2i.data.imagefolder import INFO, MAX_RESOLUTION, read_imagefolder, save_preview, write_records
from edge_t2i.errors import DataError
from edge_t2i.progress import progress

IMPORT_GENERATOR = "edge-t2i import"
MAX_CAPTION = 1000


def is_imported(path: Path) -> bool:
    """Whether `path` is a dataset `data import` wrote."""
    try:
        info = json.loads((path / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(info, dict) and info.get("generator") == IMPORT_GENERATOR


def _pick(row: dict, keys: tuple[str, ...], where: str) -> str:
    for k in keys:
        v = row.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    raise DataError(f"{where}: needs a non-empty '{keys[0]}' (or '{keys[1]}') field")


def read_rows(source: Path, captions: Path | None) -> list[dict]:
    """[{"file": relative path, "text": caption, "licence": str | None}] from the captions file or metadata.jsonl.

    Raises DataError (missing fields, a path outside the source, unreadable file)."""
    rows: list[dict] = []
    if captions is None:
        folder = read_imagefolder(source)
        rows = [{"file": r["file_name"], "text": r["text"], "licence": r.get("licence")} for r in folder.records]
    else:
        try:
            text = captions.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read captions file {captions}: {exc}") from None
        if captions.suffix.lower() in (".jsonl", ".json"):
            raw = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        item = json.loads(line)
                    except (ValueError, RecursionError):
                        raise DataError(f"{captions}:{n}: not valid JSON") from None
                    if not isinstance(item, dict):
                        raise DataError(f"{captions}:{n}: each line must be a JSON object")
                    raw.append((f"{captions}:{n}", item))
        else:
            try:
                reader = csv.DictReader(text.splitlines())
                raw = [(f"{captions}:{n}", dict(r)) for n, r in enumerate(reader, 2)]
            except csv.Error as exc:
                raise DataError(f"{captions}: not a CSV file ({exc})") from None
        for where, item in raw:
            lic = item.get("licence") or item.get("license")
            rows.append({"file": _pick(item, ("file", "file_name"), where),
                         "text": _pick(item, ("caption", "text"), where),
                         "licence": lic.strip() if isinstance(lic, str) and lic.strip() else None})
    for r in rows:
        name = r["file"]
        if os.path.isabs(name) or ".." in Path(name).parts or "\0" in name:
            raise DataError(f"image path must be relative and inside {source}: {name[:80]!r}")
        if len(r["text"]) > MAX_CAPTION:
            raise DataError(f"caption of {name} is over {MAX_CAPTION} characters")
    if not rows:
        raise DataError("no captioned images to import")
    return rows


def read_rgba(path: Path) -> np.ndarray:
    """Any 8/16-bit grey, RGB or RGBA image -> float32 premultiplied RGBA [H, W, 4] in [0, 1]."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"cannot read image {path} (missing or not an image)")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    x = img.astype(np.float32) / scale
    if x.ndim == 2:
        x = cv2.cvtColor(x, cv2.COLOR_GRAY2RGBA)
    elif x.shape[2] == 3:
        x = cv2.cvtColor(x, cv2.COLOR_BGR2RGBA)
    elif x.shape[2] == 4:
        x = cv2.cvtColor(x, cv2.COLOR_BGRA2RGBA)
    else:
        raise DataError(f"{path}: {x.shape[2]} channels (want grey, RGB or RGBA)")
    x[..., :3] *= x[..., 3:]
    return x


def square_resize(premultiplied: np.ndarray, side: int, fill_white: bool) -> np.ndarray:
    """Centre on a square (transparent, or white for opaque sources) and area-resize to `side`."""
    h, w = premultiplied.shape[:2]
    if h != w:
        n = max(h, w)
        canvas = np.zeros((n, n, 4), np.float32)
        if fill_white:
            canvas[:] = 1.0
        y, x = (n - h) // 2, (n - w) // 2
        canvas[y:y + h, x:x + w] = premultiplied
        premultiplied = canvas
    if premultiplied.shape[0] != side:
        interp = cv2.INTER_AREA if premultiplied.shape[0] > side else cv2.INTER_CUBIC
        premultiplied = np.clip(cv2.resize(premultiplied, (side, side), interpolation=interp), 0.0, 1.0)
    return premultiplied


def to_straight_uint8(premultiplied: np.ndarray) -> np.ndarray:
    """float premultiplied RGBA [..., 4] in [0, 1] -> uint8 straight-alpha RGBA (the PNG convention)."""
    a = premultiplied[..., 3:]
    rgb = np.where(a > 1e-6, premultiplied[..., :3] / np.maximum(a, 1e-6), 0.0)
    return np.clip(np.rint(np.concatenate([rgb, a], -1) * 255.0), 0, 255).astype(np.uint8)


def import_images(source: str | os.PathLike[str], out: str | os.PathLike[str], captions: str | None = None,
                  resolution: int = 64, licence: str | None = None, name: str | None = None,
                  force: bool = False, show_progress: bool = True) -> Path:
    """Write the imagefolder `out` (atomically): `{i:05d}.png` at `resolution` px, metadata.jsonl (file_name,
    text, source file, licence) and dataset_info.json (generator "edge-t2i import", count, resolution, alpha,
    licences with counts). Returns `out`.

    Raises: DataError (unreadable image or captions, bad resolution), OutputError (`out` holds files this
    tool did not write, without `force`; `out` inside `source`)."""
    src = Path(source)
    if not src.is_dir():
        raise DataError(f"source folder {src} does not exist")
    if not 16 <= resolution <= MAX_RESOLUTION:
        raise DataError(f"resolution must be in 16..{MAX_RESOLUTION} pixels, got {resolution}")
    rows = read_rows(src, Path(captions) if captions else None)
    _io.claim_output_dir(out, "dataset this tool wrote", is_imported, inputs=(src,), force=force)
    images = []
    for r in progress(rows, total=len(rows), desc="import", disable=not show_progress):
        x = read_rgba(src / r["file"])
        images.append(square_resize(x, resolution, fill_white=bool((x[..., 3] >= 1.0).all())))
    alpha = any(bool((x[..., 3] < 1.0).any()) for x in images)
    with _io.atomic_dir(out) as tmp:
        records = []
        for i, (r, x) in enumerate(zip(rows, images)):
            file_name = f"{i:05d}.png"
            pix = to_straight_uint8(x)
            bgr = cv2.cvtColor(pix, cv2.COLOR_RGBA2BGRA) if alpha else cv2.cvtColor(pix[..., :3], cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".png", bgr)
            if not ok:
                raise DataError(f"could not encode {r['file']}")
            (tmp / file_name).write_bytes(buf.tobytes())
            lic = r["licence"] or licence
            records.append({"file_name": file_name, "text": r["text"], "source_file": r["file"],
                            **({"licence": lic} if lic else {})})
        write_records(tmp, records)
        counts = Counter(rec.get("licence", "unknown (not stated at import)") for rec in records)
        _io.write_json(tmp / INFO, {
            "generator": IMPORT_GENERATOR, "version": 1, "name": name or src.name, "count": len(records),
            "resolution": resolution, "alpha": alpha, "kind": "general",
            "licences": [{"licence": k, "images": v} for k, v in counts.most_common()],
        })
        save_preview(read_imagefolder(tmp), tmp / "preview.png")
    return Path(out)


def dataset_info(path: str | os.PathLike[str]) -> dict:
    """The folder's dataset_info.json as a dict ({} when absent or unreadable)."""
    try:
        info = json.loads((Path(path) / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return info if isinstance(info, dict) else {}


__all__ = ["IMPORT_GENERATOR", "dataset_info", "import_images", "is_imported", "read_rgba", "read_rows"]
