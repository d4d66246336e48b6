"""Progress bars: tqdm when installed (train/convert extras), a quiet fallback otherwise."""

from __future__ import annotations

import sys
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
