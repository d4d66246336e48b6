"""The backend interface every inference backend implements, and the registry they join by name.

As in Polygraphy's runners (polygraphy/backend/base/runner.py: `infer` checks the feed dict against the
input metadata, then calls `infer_impl`), the checks live in the interface: `infer` checks the feeds and the
outputs against the pack's declared IO (`IOSpec`) around each backend's own `run`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_t2i.errors import BackendError, InputError, PackError
from edge_t2i.imaging import to_uint8

TUNE_BATCHES = (1, 16)  # the batch sizes load() measures and routes (runtime/select.py); engines that compile
# per shape (OpenVINO) compile these statically
RANGE_SLACK = 0.05  # an INT8 model's output Q/DQ may round tanh's 1.0 up by a step or two (of 2/255 each)


@dataclass(frozen=True)
class IOSpec:
    """What a generator takes and returns: inputs {name: feature size} (each float32 [B, size]) and the image
    float32 [B, *image] (channels, height, width), in [-1, 1]."""

    inputs: dict[str, int]
    image: tuple[int, int, int]

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> int:
        """The batch size of `feeds`. Raises InputError (names, dtypes, shapes or batch sizes differ)."""
        if set(feeds) != set(self.inputs):
            raise InputError(f"inputs {sorted(feeds)}, the generator takes {sorted(self.inputs)}")
        batches = set()
        for name, size in self.inputs.items():
            arr = feeds[name]
            if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[1] != size:
                got = f"{arr.dtype} {list(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise InputError(f"input {name} must be float32 [batch, {size}], got {got}")
            batches.add(arr.shape[0])
        if len(batches) != 1 or 0 in batches:
            raise InputError(f"inputs must share one batch size > 0, got {sorted(batches)}")
        return batches.pop()

    def check_outputs(self, outputs: dict[str, np.ndarray], batch: int, where: str) -> np.ndarray:
        """The image of `outputs`, checked against the manifest: name, dtype, shape, and every value finite and in
        [-1, 1] (with RANGE_SLACK for an INT8 model's last Q/DQ step). One pass for the minimum, one for the
        maximum (NaN propagates through both): about 4 us at 64 px batch 1, 1 ms at 256 px batch 16.
        Raises PackError (no image, another dtype or shape, values outside the range), BackendError (NaN or inf)."""
        image = outputs.get("image")
        want = (batch, *self.image)
        if not isinstance(image, np.ndarray) or image.dtype != np.float32 or image.shape != want:
            got = (f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray)
                   else f"outputs {sorted(outputs)}")
            raise PackError(f"{where} returned {got}, the manifest declares image float32 {list(want)}: "
                            "the model does not match its pack")
        low, high = float(image.min()), float(image.max())
        if not (-1.0 - RANGE_SLACK <= low and high <= 1.0 + RANGE_SLACK):
            if not (np.isfinite(low) and np.isfinite(high)):
                raise BackendError(f"{where} produced NaN/inf pixels: the pack's weights are broken; "
                                   "re-convert from a healthy checkpoint")
            raise PackError(f"{where} returned values in [{low:.3g}, {high:.3g}], the manifest declares images in "
                            "[-1, 1]: the model does not match its pack")
        return image


class Backend(ABC):
    """One loaded model. `infer` takes named float32 arrays ("z" [B, nz], and "embedding" [B, dim] unless the
    generator is unconditional) and returns named float32 arrays ("image" [B, 3, R, R] in [-1, 1]); `close`
    frees it (also as a context manager). Polygraphy's runner lifecycle: load in the constructor, infer, close.

    Subclasses implement `run`; `infer` checks around it once `io` is set (the runtime sets it from the
    manifest). Implementations raise BackendError when they cannot load or run."""

    name: str = "backend"
    precision: str = "fp32"
    max_batch: int | None = None   # None: any batch size
    thread_safe: bool = True       # False: the Pipeline serialises calls
    io: IOSpec | None = None       # the pack's declared IO: None runs unchecked (the converter's own renders)

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The backend's own inference, unchecked."""

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`run`, with the feeds and the outputs checked against `io` (InputError, PackError, BackendError)."""
        if self.io is None:
            return self.run(feeds)
        batch = self.io.check_feeds(feeds)
        out = self.run(feeds)
        self.io.check_outputs(out, batch, self.describe())
        return out

    def pixels(self, feeds: dict[str, np.ndarray], bgr: bool = False) -> np.ndarray:
        """uint8 [B, H, W, 3] RGB (BGR with `bgr`) of `feeds` the caller checked: `run`, the image checked against
        `io` as `infer` checks it, then imaging.to_uint8; what `Pipeline.generate` returns and the tuner times.
        Raises PackError, BackendError."""
        out = self.run(feeds)
        image = out["image"] if self.io is None else self.io.check_outputs(out, len(feeds["z"]), self.describe())
        return to_uint8(image, bgr)

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


def model_source(model: object, label: str | None = None) -> tuple[str | bytes, str]:
    """(what the engine loads: a path string or the model's bytes, a name for messages) of a backend's `model`
    argument: a file path, or the bytes of a model that runtime/packfile.py read and verified (`label`: its
    file name). Raises BackendError (another type)."""
    if isinstance(model, bytes):
        return model, label or "the model"
    if isinstance(model, (str, os.PathLike)):
        return str(model), label or Path(model).name
    raise BackendError(f"a model is a file path or its bytes, got {type(model).__name__}")


def wrap_error(exc: BaseException, what: str) -> BackendError:
    """A third-party library's exception as a one-line BackendError naming what failed."""
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return BackendError(f"{what}: {first}")
