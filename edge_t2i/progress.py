"""What a person sees while work runs: progress bars (tqdm when installed, train/convert extras; a quiet fallback
otherwise), and third-party chatter kept off stderr unless `--verbose` asked for it."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "",
             disable: bool = False) -> Iterator[T]:
    try:
        from tqdm import tqdm
    except ImportError:
        return iter(iterable)
    return iter(tqdm(iterable, total=total, desc=desc, disable=disable or not sys.stderr.isatty(),
                     dynamic_ncols=True, leave=False))


@contextlib.contextmanager
def third_party_quiet() -> Iterator[None]:
    """Silence other libraries' warnings and log records for the block (torch's TracerWarning while exporting,
    ONNX Runtime's "consider pre-processing" hint on the root logger while quantizing): nothing a user can act on.
    With `edge-t2i --verbose` (the "edge_t2i" logger at DEBUG) they show as usual."""
    if logging.getLogger("edge_t2i").isEnabledFor(logging.DEBUG):
        yield
        return
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
