"""The backend interface every inference backend implements, and the registry they join by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np


class Backend(ABC):
    """One loaded model. `infer` takes named float32 arrays ("z" [B, nz], and "embedding" [B, dim] unless the
    generator is unconditional) and
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
