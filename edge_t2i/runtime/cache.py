"""The user's cache folder for what the runtime learns about this device: engine measurements and device
checks (`tune-v1.json`, runtime/select.py) and OpenVINO's compiled-model cache (`openvino/`).

Where: $EDGE_T2I_CACHE if set ("off" keeps nothing and measures every time), else $XDG_CACHE_HOME/edge-t2i,
else ~/.cache/edge-t2i (on Windows %LOCALAPPDATA%\\edge-t2i, on macOS ~/Library/Caches/edge-t2i), as the
XDG Base Directory specification and each OS's conventions place caches. Everything there can be deleted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "EDGE_T2I_CACHE"


def cache_dir() -> Path | None:
    """The cache folder (not created here), or None when $EDGE_T2I_CACHE is "off"."""
    explicit = os.environ.get(ENV, "").strip()
    if explicit.lower() == "off":
        return None
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "edge-t2i"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "edge-t2i"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "edge-t2i"


def ensure(sub: str = "") -> Path | None:
    """The cache folder (or its subfolder `sub`), created; None if caching is off or it cannot be created."""
    base = cache_dir()
    if base is None:
        return None
    path = base / sub if sub else base
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path
