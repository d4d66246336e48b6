"""Inference backends behind one small interface, registered by name.

A backend loads one model file, runs a dict of named float32 arrays, and closes
(it is a context manager). Heavy libraries are imported only when a backend is
created, so importing the runtime stays light.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_t2i.errors import BackendError, did_you_mean


class Backend(ABC):
    """One loaded model. `infer` takes named float32 arrays ("z" [B, nz], "embedding" [B, dim]) and
    returns named float32 arrays ("image" [B, 3, R, R] in [-1, 1]); `close` frees it (also as a
    context manager). Polygraphy's runner lifecycle: load in the constructor, infer, close.
    Implementations raise BackendError when they cannot load or run."""

    name: str = "backend"
    precision: str = "fp32"
    max_batch: int | None = None   # None: any batch size
    thread_safe: bool = True       # False: the Generator serialises calls

    @abstractmethod
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> str:
        return f"{self.name} ({self.precision})"

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_REGISTRY: dict[str, Callable[..., Backend]] = {}


def register(name: str) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    def wrap(factory: Callable[..., Backend]) -> Callable[..., Backend]:
        _REGISTRY[name] = factory
        return factory
    return wrap


def create(name: str, **kwargs: Any) -> Backend:
    """A backend by registered name ("onnxruntime", "tensorrt", "torch") with its constructor's arguments.

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
    from edge_t2i.runtime.backends import tensorrt as _trt  # noqa: F401
    from edge_t2i.runtime.backends import torch as _torch  # noqa: F401
