"""The "imagefolder" convention: a folder of images plus metadata.jsonl.

Each metadata line is a JSON object with at least `file_name` and `text`; the
shapes dataset adds `objects`, `background` and `heldout`. Any user folder that
follows the convention trains and evaluates the same way.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_t2i import _io
from edge_t2i.data import shapes, vocab
from edge_t2i.errors import DataError
from edge_t2i.imaging import encode_image
from edge_t2i.progress import progress

METADATA = "metadata.jsonl"
INFO = "dataset_info.json"
DATASET_GENERATOR = "edge-t2i shapes"       # dataset_info.json "generator" of `data shapes` folders
GENERATED_GENERATOR = "edge-t2i generate"    # ... and of folders of generated images (generate, sample)
MAX_RESOLUTION = 1024
MAX_COUNT = 10_000_000


def _encodable(name: str) -> bool:
    """Whether `name` is a path the file system can take (no lone surrogates: OpenCV crashes on them)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _written_by(path: Path, generator: str) -> bool:
    try:
        info = json.loads((path / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(info, dict) and info.get("generator") == generator


def is_our_dataset(path: Path) -> bool:
    """Whether `path` is a dataset `data shapes` wrote (its dataset_info.json says so)."""
    return _written_by(path, DATASET_GENERATOR)


def is_our_generated_images(path: Path) -> bool:
    """Whether `path` is a folder of generated images `generate`/`sample` wrote."""
    return _written_by(path, GENERATED_GENERATOR)


@dataclass(frozen=True)
class ImageFolder:
    """The records of an imagefolder; images are read on demand."""

    root: Path
    records: tuple[dict, ...]

    @property
    def texts(self) -> list[str]:
        return [r["text"] for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> np.ndarray:
        """uint8 [H, W, 3] RGB; an image with alpha is composited over white (what a viewer shows)."""
        rgba = self.image_rgba(index)
        if rgba.shape[2] == 3:
            return rgba
        a = rgba[..., 3:].astype(np.float32) / 255.0
        return np.rint(rgba[..., :3] * a + 255.0 * (1.0 - a)).astype(np.uint8)

    def image_rgba(self, index: int) -> np.ndarray:
        """uint8 [H, W, 3] RGB, or [H, W, 4] straight-alpha RGBA when the file has alpha."""
        path = self.root / self.records[index]["file_name"]
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise DataError(f"cannot read image {path} (missing or not an image)")
        if img.dtype != np.uint8:
            img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
        if img.ndim == 2:
            return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)

    def load_images(self, resolution: int | None = None, show_progress: bool = True, rgba: bool = False) -> np.ndarray:
        """All images as one uint8 [N, R, R, 3] array, resized (area filter) to `resolution`; with `rgba`,
        [N, R, R, 4] premultiplied RGBA (opaque images get alpha 255), resized on premultiplied values."""
        first = self.image_rgba(0) if rgba else self.image(0)
        side = resolution or first.shape[0]
        out = np.empty((len(self), side, side, 4 if rgba else 3), np.uint8)
        for i in progress(range(len(self)), total=len(self), desc="loading images", disable=not show_progress):
            img = first if i == 0 else (self.image_rgba(i) if rgba else self.image(i))
            if rgba:
                img = premultiply(img)
            if img.shape[:2] != (side, side):
                img = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            out[i] = img
        return out


def premultiply(image: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] or straight RGBA [H, W, 4] -> uint8 premultiplied RGBA [H, W, 4]."""
    if image.shape[2] == 3:
        return np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], 2)
    a = image[..., 3:].astype(np.float32) / 255.0
    return np.concatenate([np.rint(image[..., :3] * a).astype(np.uint8), image[..., 3:]], 2)


def read_imagefolder(root: str | os.PathLike[str]) -> ImageFolder:
    """Read metadata.jsonl of an imagefolder, checking each line."""
    root = Path(root)
    meta = root / METADATA
    if not meta.is_file():
        raise DataError(f"{root} is not an imagefolder: {METADATA} not found")
    records = []
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{meta} is not UTF-8 text: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:  # JSONDecodeError; an integer over Python's 4,300 digits
            raise DataError(f"{meta}:{n}: not valid JSON ({str(exc)[:120]})") from None
        except RecursionError:
            raise DataError(f"{meta}:{n}: nests too deeply to be a metadata record") from None
        if not isinstance(row, dict) or not isinstance(row.get("file_name"), str) \
                or not isinstance(row.get("text"), str):
            raise DataError(f"{meta}:{n}: each line needs string fields 'file_name' and 'text'")
        name = row["file_name"]
        if os.path.isabs(name) or ".." in Path(name).parts or "\0" in name or not _encodable(name):
            raise DataError(f"{meta}:{n}: file_name must be a relative path inside the folder: {name[:80]!r}")
        records.append(row)
    if not records:
        raise DataError(f"{meta} has no records")
    return ImageFolder(root, tuple(records))


def _worker_signals() -> None:
    """Pool workers take the default signal behaviour, not the CLI's handlers: the pool stops them
    with SIGTERM, and Ctrl-C is the parent's to handle."""
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def write_records(root: Path, rows: list[dict]) -> None:
    _io.write_text(root / METADATA, "".join(json.dumps(r) + "\n" for r in rows))


def make_shapes_dataset(out: str | os.PathLike[str], count: int, seed: int = 0, split: str = "train",
                        resolution: int = 64, novel_captions: bool = False, workers: int | None = None,
                        show_progress: bool = True, force: bool = False) -> Path:
    """Render `count` shapes samples into the imagefolder `out` (written atomically).

    `out` may be new, empty or an imagefolder this tool wrote; anything else only with `force`.
    Raises: DataError (bad count, split or resolution), OutputError (see `_io.claim_output_dir`)."""
    if not 1 <= count <= MAX_COUNT:
        raise DataError(f"count must be in 1..{MAX_COUNT}, got {count}")
    if not 16 <= resolution <= MAX_RESOLUTION:
        raise DataError(f"resolution must be in 16..{MAX_RESOLUTION} pixels, got {resolution}")
    if split not in shapes.SPLITS:
        raise DataError(f"unknown split '{split}'; valid: {', '.join(shapes.SPLITS)}")
    _io.claim_output_dir(out, "dataset this tool wrote", is_our_dataset, force=force)
    workers = workers or min(os.cpu_count() or 1, 8)
    chunk = 250
    with _io.atomic_dir(out) as tmp:
        jobs = [(s, min(chunk, count - s), seed, split, resolution, str(tmp), novel_captions)
                for s in range(0, count, chunk)]
        rows: list[dict] = []
        if workers > 1 and len(jobs) > 1:
            context = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
            with context.Pool(workers, initializer=_worker_signals) as pool:
                for part in progress(pool.imap(shapes._render_chunk, jobs), total=len(jobs),
                                     desc=f"shapes {split}", disable=not show_progress):
                    rows.extend(part)
        else:
            for job in progress(jobs, total=len(jobs), desc=f"shapes {split}", disable=not show_progress):
                rows.extend(shapes._render_chunk(job))
        write_records(tmp, rows)
        _io.write_json(tmp / INFO, {
            "generator": DATASET_GENERATOR, "version": 1, "count": count, "seed": seed, "split": split,
            "resolution": resolution, "novel_captions": novel_captions,
            "heldout_pairs": [list(p) for p in vocab.HELDOUT_PAIRS],
            "vocabulary": {"shape": vocab.SHAPES, "color": vocab.COLORS, "size": vocab.SIZES,
                           "position": vocab.POSITIONS, "background": vocab.BACKGROUNDS},
        })
    return Path(out)


def write_imagefolder(out: str | os.PathLike[str], images: np.ndarray, prompts: list[str],
                      seeds: list[int], force: bool = False, inputs: tuple = (),
                      extra: list[dict] | None = None) -> Path:
    """Generated uint8 [N, H, W, 3] images as an imagefolder: one PNG per prompt plus metadata.jsonl
    (file_name, text, seed, and the keys of `extra[i]`, e.g. what the prompt was read as) and dataset_info.json,
    written atomically, so `edge-t2i eval` can score it.

    Raises: OutputError if `out` holds files this tool did not write (without `force`)."""
    _io.claim_output_dir(out, "folder of generated images", is_our_generated_images, inputs, force)
    with _io.atomic_dir(out) as tmp:
        rows = []
        for i, (img, text, seed) in enumerate(zip(images, prompts, seeds, strict=True)):
            name = f"{i:05d}.png"
            (tmp / name).write_bytes(encode_image(name, img))  # the folder is the atomic unit
            rows.append({"file_name": name, "text": text, "seed": seed, **(extra[i] if extra else {})})
        write_records(tmp, rows)
        _io.write_json(tmp / INFO, {"generator": GENERATED_GENERATOR, "count": len(rows)})
    return Path(out)


def save_preview(folder: ImageFolder, out: str | os.PathLike[str], count: int = 32) -> Path:
    """A grid PNG of the first `count` images of an imagefolder."""
    from edge_t2i.imaging import save_grid

    n = min(count, len(folder))
    return save_grid(out, np.stack([folder.image(i) for i in range(n)]))
