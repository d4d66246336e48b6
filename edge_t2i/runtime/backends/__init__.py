"""Inference backends behind one small interface, registered by name.

A backend loads one model file, runs a dict of named float32 arrays, and closes
(it is a context manager). Heavy libraries are imported only when a backend is
created, so importing the runtime stays light.
"""

from __future__ import annotations

from typing import Any

from edge_t2i.errors import BackendError, did_you_mean
from edge_t2i.runtime.backends.base import _REGISTRY, Backend, register

__all__ = ["Backend", "create", "names", "register"]


def create(name: str, **kwargs: Any) -> Backend:
    """A backend by registered name ("onnxruntime", "openvino", "tensorrt", "torch") with its constructor's arguments.

    Raises: BackendError (unknown name, or it cannot load here), MissingExtraError."""
    _load_builtin()
    if name not in _REGISTRY:
        raise BackendError(did_you_mean(name, sorted(_REGISTRY), "backend"))
    return _REGISTRY[name](**kwargs)


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Importing these modules imports no heavy library: they import lazily in their constructors.
    from edge_t2i.runtime.backends import onnxruntime as _ort  # noqa: F401
    from edge_t2i.runtime.backends import openvino as _ov  # noqa: F401
    from edge_t2i.runtime.backends import tensorrt as _trt  # noqa: F401
    from edge_t2i.runtime.backends import torch as _torch  # noqa: F401
