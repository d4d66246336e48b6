"""Reading a pack's files as an adversary may have made them: only the bytes that were hashed ever run.

A pack is untrusted input (a game loads packs that others made), and its sha256s are in a manifest the
same adversary wrote, so a digest only proves that a file is the one the manifest names. Each file is
therefore refused for what it is before it is hashed, and used through the very bytes that were hashed:

- a regular file directly in the pack (opened with O_NOFOLLOW and O_NONBLOCK, then `fstat`: no symbolic
  link, FIFO, device or folder; a FIFO cannot make the open hang);
- of exactly the size the manifest declares (a 3 GiB file behind an 8-byte declaration is refused from its
  size alone, before a byte is read), at most MAX_PACK_FILE_BYTES;
- read once, hashed as it is read, compared with its sha256, and handed to the engine as those bytes (ONNX
  Runtime and OpenVINO load models from memory), never re-opened by path;
- an ONNX model must keep its weights inside the file: ONNX Runtime resolves external data of a model
  loaded from memory against the *current working directory*, which would run bytes no manifest hashed,
  so `read_model` refuses any tensor stored outside (`external_data_locations`, a scan of the protobuf).

Raises everywhere: PackError (one line: the file and what is wrong with it).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_t2i.errors import PackError

if TYPE_CHECKING:
    from edge_t2i.runtime.manifest import Manifest

MAX_PACK_FILE_BYTES = 2**31 - 1   # ONNX's protobuf limit; also the largest bank (docs/pack-spec.md)
_CHUNK = 1 << 20


class PackFile:
    """One pack file opened for reading after the checks above (a context manager).

    `read(n)` and `readinto(buf)` hash what they return; `finish()` checks that the whole file was read and
    matches `sha256`. Data read must not be used before `finish()` returns."""

    def __init__(self, path: Path, sha256: str | None, size: int, what: str):
        self.path, self.sha256, self.what = path, sha256, what
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(path, flags)
        except FileNotFoundError:
            raise PackError(f"{what} is missing (not found at {path})") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PackError(f"{what} is a symbolic link: a pack's files must be regular files inside the "
                                "pack (the runtime runs only what it verified there)") from None
            raise PackError(f"{what} cannot be opened ({exc.strerror or exc})") from None
        try:
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                raise PackError(f"{what} is not a regular file (a folder, FIFO or device): a pack holds plain files")
            if size > MAX_PACK_FILE_BYTES or (not size and st.st_size > MAX_PACK_FILE_BYTES):
                raise PackError(f"{what} is declared or found larger than {MAX_PACK_FILE_BYTES} bytes, the most a "
                                "pack file may hold (ONNX's protobuf limit)")
            if size and st.st_size != size:
                raise PackError(f"{what} is {st.st_size} bytes, the manifest declares {size}: altered, or not "
                                "this pack's file")
            if hasattr(os, "set_blocking"):
                os.set_blocking(self.fd, True)
        except BaseException:
            os.close(self.fd)
            raise
        self.size = st.st_size
        self._hash = hashlib.sha256()
        self._done = 0

    def read(self, n: int) -> bytes:
        """Up to `n` bytes (fewer only at the end of the file), hashed."""
        parts, want = [], n
        while want > 0:
            block = os.read(self.fd, min(want, 1 << 30))
            if not block:
                break
            parts.append(block)
            want -= len(block)
        data = b"".join(parts) if len(parts) != 1 else parts[0]
        self._hash.update(data)
        self._done += len(data)
        return data

    def readinto(self, buffer: Any) -> None:  # noqa: ANN401 - any writable buffer (bytearray, a NumPy array)
        """Fill `buffer` (a writable bytes-like object) whole, hashing it; PackError if the file ends first."""
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view):
            n = os.readv(self.fd, [view[got:got + _CHUNK * 64]])
            if n == 0:
                raise PackError(f"{self.what} ends before its declared data: truncated or altered")
            got += n
        self._hash.update(view)
        self._done += got

    def finish(self) -> None:
        """PackError unless exactly the file's bytes were read and they match the manifest's sha256."""
        if self._done != self.size or os.read(self.fd, 1):
            raise PackError(f"{self.what} changed size while it was read: refused")
        if self.sha256 is not None and self._hash.hexdigest() != self.sha256:
            raise PackError(f"{self.what} does not match its sha256 in the manifest (altered or corrupt): "
                            "re-run edge-t2i convert, or get the pack again from its maker")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PackFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_plain(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path`, a regular file (not a link, FIFO or device) of at most `limit` bytes: the manifest
    itself, whose size no manifest declares. Raises PackError."""
    with PackFile(path, None, 0, what) as f:
        if f.size > limit:
            raise PackError(f"{what} is {f.size} bytes, more than {limit}: not a pack's file")
        data = f.read(f.size)
        f.finish()
    return data


def open_file(manifest: Manifest, name: str) -> PackFile:
    """`name` of `manifest`'s pack, opened after the checks of this module. Raises PackError."""
    if name not in manifest.files:
        raise PackError(f"pack file {name} is not listed in the manifest: the runtime uses only listed files")
    return PackFile(manifest.path(name), manifest.files[name], manifest.file_bytes.get(name, 0),
                    f"pack file {name}")


def read_verified(manifest: Manifest, name: str) -> bytes:
    """The bytes of pack file `name`, checked (regular, declared size, sha256). Raises PackError."""
    with open_file(manifest, name) as f:
        try:
            data = f.read(f.size)
        except MemoryError:
            raise PackError(f"pack file {name} ({f.size} bytes) does not fit in memory") from None
        f.finish()
    return data


def read_model(manifest: Manifest, name: str) -> bytes:
    """The verified bytes of ONNX model `name` (whatever its file name says), refused if any tensor keeps its data
    outside the file."""
    data = read_verified(manifest, name)
    outside = external_data_locations(data, name)
    if outside:
        raise PackError(f"pack file {name} keeps weights in external data ({', '.join(sorted(outside))[:120]}): "
                        "the runtime runs only bytes the manifest hashed; export the model with its weights "
                        "inside (ONNX files under 2 GB)")
    return data


def check_file(manifest: Manifest, name: str) -> str:
    """'' if pack file `name` passes every check (read and hashed in 1 MiB blocks), else the reason."""
    try:
        with open_file(manifest, name) as f:
            while f.read(_CHUNK):
                pass
            f.finish()
    except PackError as exc:
        return str(exc)
    return ""


# ---- external data in an ONNX protobuf --------------------------------------------------------------------------
# onnx.proto3 field numbers of every message that can hold a TensorProto, and of TensorProto's external data:
# ModelProto.graph 7, .training_info 20, .functions 25; TrainingInfoProto.initialization 1, .algorithm 2;
# GraphProto.node 1, .initializer 5, .sparse_initializer 15; NodeProto.attribute 5; FunctionProto.node 7,
# .attribute_proto 11 (attribute defaults); AttributeProto.t 5, .g 6, .tensors 10, .graphs 11, .sparse_tensor 22,
# .sparse_tensors 23; SparseTensorProto.values 1, .indices 2; TensorProto.name 8, .external_data 13
# (StringStringEntryProto key 1, value 2), .data_location 14 (EXTERNAL = 1).
_CHILDREN = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_MAX_DEPTH = 64


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(buf: memoryview):  # noqa: ANN202 - yields (field, wire type, value or sub-buffer)
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield field, wire, value
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("length past the end")
            yield field, wire, buf[i:i + n]
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
    if i != len(buf):
        raise ValueError("truncated field")


def _scan(buf: memoryview, kind: str, depth: int, found: set[str]) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply")
    if kind == "tensor":
        name = ""
        for field, wire, value in _fields(buf):
            if field == 8 and wire == 2:
                name = bytes(value).decode("utf-8", "replace")[:60]
            elif (field == 14 and wire == 0 and value == 1) or (field == 13 and wire == 2):
                found.add(name or "a tensor")
        return
    children = _CHILDREN[kind]
    for field, wire, value in _fields(buf):
        if wire == 2 and field in children:
            _scan(value, children[field], depth + 1, found)


def external_data_locations(data: bytes, name: str = "model") -> set[str]:
    """Names of the tensors of ONNX model `data` (a ModelProto) stored as external data, in the graph, its
    subgraphs, functions, Constant attributes and sparse initializers. Raises PackError (not a protobuf)."""
    found: set[str] = set()
    try:
        _scan(memoryview(data), "model", 0, found)
    except ValueError as exc:
        raise PackError(f"pack file {name} is not an ONNX model ({exc})") from None
    return found
