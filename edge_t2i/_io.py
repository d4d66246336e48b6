"""Files: output-path guards, atomic writes, sha256 digests.

Every artifact the package writes goes through here. Before work starts, `claim_output_dir`
/ `claim_output_file` check that the output may be written: it is writable, it does not
overlap an input, and a folder that exists is empty or this tool's own earlier artifact of
the same kind (else `--force`). A write lands in a temporary sibling named with the writer's
process id and is renamed over the target (os.replace is atomic on POSIX and Windows), so a
crash, Ctrl-C or SIGTERM at any moment leaves either the old artifact or the new one, never a
half-written one; temporaries of dead processes are swept by the next write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_t2i.errors import OutputError

PathLike = str | os.PathLike[str]
# Files that make a folder an artifact of this tool (any of the sets), where single-file outputs (grids,
# --json, --plot) are never written: a pack, an imagefolder, a checkpoint, a training run.
ARTIFACT_MARKERS = (("manifest.json",), ("metadata.jsonl",), ("config.json", "generator.safetensors"),
                    ("train_config.json",))
_TMP_SUFFIX = ".tmp"


def _resolved(path: PathLike) -> Path:
    """Absolute, symlinks resolved, `~` expanded: `--out .` has a name after this."""
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _check_writable(target: Path, what: str) -> None:
    """The nearest existing ancestor of `target` must be a folder we may write into."""
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {what} {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(parent) else "permission denied"
        raise OutputError(f"cannot write {what} {target}: {parent} is not writable ({reason})")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def _as_given(path: PathLike) -> Path:
    """Absolute and `~` expanded, links NOT resolved: `PACK/x.png` is inside the pack by name even when it is a
    link to a file elsewhere (a crafted pack's link must not lead a write outside)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _inside_an_input(out: PathLike, target: Path, inputs: tuple[PathLike, ...]) -> Path | None:
    """The input that `out` (as given, or `target`, resolved) is, or is inside; None if neither."""
    given = _as_given(out)
    through = _resolved(given.parent) / given.name  # the folders resolved, the file itself not (it may be a link)
    for item in inputs:
        for place, source in ((target, _resolved(item)), (given, _as_given(item)), (given, _resolved(item)),
                              (through, _resolved(item))):
            if place == source or source in place.parents:
                return source
    return None


def _check_overlap(target: Path, inputs: tuple[PathLike, ...], what: str) -> None:
    for name, place in (("the current folder", Path.cwd()), ("your home folder", Path.home())):
        place = place.resolve()
        if target == place or target in place.parents:
            raise OutputError(f"{what} {target} is {name} or holds it: pick a new folder")
    for item in inputs:
        source = _resolved(item)
        if target == source or target in source.parents or source in target.parents:
            raise OutputError(f"{what} {target} overlaps the input {source}: pick a folder outside it")


def claim_output_dir(out: PathLike, kind: str, is_ours: Callable[[Path], bool], inputs: tuple[PathLike, ...] = (),
                     force: bool = False, what: str = "--out") -> Path:
    """Check, before any work, that folder `out` may be replaced by a new `kind` (e.g. "pack").

    Allowed: a folder that does not exist, an empty one, or one for which `is_ours(path)` is true
    (this tool's earlier artifact of the same kind); a folder of other files only with `force`. Never,
    even with `force`: a folder holding subfolders, the current or the home folder or one holding them,
    an input, a folder inside an input or holding one. Returns: the resolved path.
    Raises: OutputError (one line naming the path and the reason)."""
    target = _resolved(out)
    _check_overlap(target, inputs, what)
    source = _inside_an_input(out, target, inputs)
    if source is not None:
        raise OutputError(f"{what} {_as_given(out)} is or is inside the input {source}: pick a folder outside it")
    if target.exists():
        if not target.is_dir():
            raise OutputError(f"{what} {target} exists and is not a folder")
        if any(target.iterdir()) and not is_ours(target):
            if not force:
                raise OutputError(f"{what} {target} exists and is not a {kind} (add --force to replace it)")
            inner = next((p for p in target.iterdir() if p.is_dir()), None)
            if inner is not None:  # our artifacts are flat: a tree is someone's project, even with --force
                raise OutputError(f"{what} {target} holds the folder {inner.name}: --force replaces a folder of "
                                  "files, never a tree; pick a new folder")
    _check_writable(target, what)
    return target


def claim_output_file(out: PathLike, inputs: tuple[PathLike, ...] = (), what: str = "--out") -> Path:
    """Check, before any work, that file `out` may be written (an existing file is replaced).

    Raises: OutputError if it is a folder or another non-regular file (a device, a FIFO), an input or
    inside an input folder (a pack, a checkpoint), under a regular file, or not writable."""
    target = _resolved(out)
    if target.is_dir():
        raise OutputError(f"{what} {target} is a folder: give a file name")
    if target.exists() and not target.is_file():
        raise OutputError(f"{what} {target} exists and is not a regular file (a device or a pipe): "
                          "give a file name")
    source = _inside_an_input(out, target, inputs)
    if source is not None:
        raise OutputError(f"{what} {_as_given(out)} is or is inside the input {source}: pick a path outside it")
    marker = next((m for m in ARTIFACT_MARKERS if all((target.parent / f).is_file() for f in m)), None)
    if marker is not None and not (marker == ("manifest.json",) and not _holds_pack(target.parent)):
        raise OutputError(f"{what} {target} is inside {target.parent}, which holds {' + '.join(marker)}: a pack, "
                          "checkpoint, dataset or run folder is not a place for other output; pick a path outside it")
    _check_writable(target, what)
    return target


def _holds_pack(folder: Path) -> bool:
    """A manifest.json of this tool's pack format (many tools write a manifest.json)."""
    try:
        return b'"edge-t2i pack"' in (folder / "manifest.json").read_bytes()[:1 << 22]
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(target: Path) -> list[Path]:
    """Remove temporaries `.{name}.{pid}.*.tmp` beside `target` whose writer process is gone.

    Returns: what was removed."""
    removed = []
    for stale in target.parent.glob(f".{target.name}.*{_TMP_SUFFIX}"):
        pid_text = stale.name[len(target.name) + 2:].split(".", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` on success.

    Raises: OSError from the filesystem (the temporary file is removed)."""
    target = _resolved(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=_TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _name_the_path(target):
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the artifact follows the umask
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask sets as it reads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _name_the_path(target: Path) -> Iterator[None]:
    """An OSError without a file name (a full disk reports none) gets the artifact's path."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
        raise


def write_bytes(target: PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npz(target: PathLike, **arrays: np.ndarray) -> str:
    """Write arrays as an uncompressed .npz (readable with allow_pickle=False), atomically.

    Returns: the sha256 hex digest of the written file."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg as allow_pickle
        digest = sha256_file(tmp)
    return digest


SAFETENSORS_DTYPES: dict[str, np.dtype] = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "U8": np.dtype("u1")}
MAX_SAFETENSORS_HEADER = 64 << 20


def write_safetensors(target: PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """Write float16/float32/uint8 arrays in the safetensors format (huggingface/safetensors: an 8-byte
    little-endian header length, a JSON header padded with spaces to 8 bytes, then the raw little-endian
    data), atomically. Returns: the file's sha256."""
    header: dict[str, Any] = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, array in tensors.items():
        code = next(k for k, v in SAFETENSORS_DTYPES.items() if v == array.dtype.newbyteorder("<"))
        blob = np.ascontiguousarray(array, dtype=SAFETENSORS_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with atomic_path(target) as tmp:
        tmp.write_bytes(len(head).to_bytes(8, "little") + head + b"".join(blobs))
        digest = sha256_file(tmp)
    return digest


def read_safetensors(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file holding F16/F32/U8 tensors, checked strictly.

    Raises: ValueError (malformed header, offsets outside the data or overlapping, other dtypes),
    OSError (unreadable)."""
    return parse_safetensors(Path(path).read_bytes())


def parse_safetensors_header(head: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensor entries, metadata) of a safetensors header (the JSON after the 8-byte length). Raises ValueError."""
    try:
        header = json.loads(head.decode("utf-8"))
    except RecursionError:
        raise ValueError("header nests too deeply") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ must map strings to strings")
    return header, metadata


def safetensors_layout(header: dict[str, Any]) -> list[tuple[str, np.dtype, tuple[int, ...], int, int]]:
    """(name, dtype, shape, start, end) of each tensor of a parsed header, in data order, checked: known dtypes,
    shapes of non-negative integers, offsets contiguous from 0 and sized for the shape. Raises ValueError."""
    out, end = [], 0
    for name, spec in sorted(header.items(), key=_start_offset):
        if not isinstance(spec, dict) or spec.get("dtype") not in SAFETENSORS_DTYPES:
            raise ValueError(f"tensor {name!r}: dtype must be one of {sorted(SAFETENSORS_DTYPES)}")
        shape, offsets = spec.get("shape"), spec.get("data_offsets")
        if not (isinstance(shape, list) and len(shape) <= 8 and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in shape)):
            raise ValueError(f"tensor {name!r}: bad shape {str(shape)[:80]}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and offsets[0] == end
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise ValueError(f"tensor {name!r}: data offsets {str(offsets)[:80]} do not follow the previous tensor")
        dtype = SAFETENSORS_DTYPES[spec["dtype"]]
        if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape}")
        out.append((name, dtype, tuple(shape), offsets[0], offsets[1]))
        end = offsets[1]
    return out


def parse_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """`read_safetensors` of a file's bytes (arrays are read-only views of `data`). Raises ValueError."""
    if len(data) < 8:
        raise ValueError("shorter than the 8-byte header length")
    size = int.from_bytes(data[:8], "little")
    if not 2 <= size <= min(MAX_SAFETENSORS_HEADER, len(data) - 8):
        raise ValueError(f"header length {size} does not fit the file")
    header, metadata = parse_safetensors_header(data[8:8 + size])
    body, tensors = memoryview(data)[8 + size:], {}
    layout = safetensors_layout(header)
    if (layout[-1][4] if layout else 0) != len(body):
        raise ValueError(f"{len(body) - (layout[-1][4] if layout else 0)} bytes of data where the header "
                         "declares otherwise")
    for name, dtype, shape, start, end in layout:
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
    return tensors, metadata


def _start_offset(item: tuple[str, Any]) -> int:
    """Sort key of a header entry: its first data offset when that is an integer (checked after)."""
    offsets = item[1].get("data_offsets") if isinstance(item[1], dict) else None
    first = offsets[0] if isinstance(offsets, list) and offsets else 0
    return first if isinstance(first, int) and not isinstance(first, bool) else 0


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_dir(target: PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` whole.

    The previous folder is moved aside and deleted only after the new one is in
    place, so an interruption leaves the previous version (or the new one) intact.
    """
    target = _resolved(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    sweep_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=_TMP_SUFFIX, dir=target.parent))
    try:
        with _name_the_path(target):
            yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _recover(target: Path) -> None:
    """Finish a swap that a crash interrupted between its two renames: put the old folder back."""
    if target.exists():
        for stale in target.parent.glob(f".{target.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], target)


@contextlib.contextmanager
def scratch_tempdir(folder: Path) -> Iterator[Path]:
    """Route `tempfile`'s scratch files (ours and libraries', e.g. ONNX Runtime's quantizer) into
    `folder` (inside an atomic_dir temporary) for the block, so an interruption leaves none behind
    in the system temp folder. Not thread-safe: it sets the process-wide `tempfile.tempdir`."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution (e.g. 'onnxruntime'), or None."""
    import importlib.metadata as md

    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return None
