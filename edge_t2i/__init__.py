"""edge-t2i: text-to-image GAN generators as packs for real-time programs.

The public API is torch-free: `load(pack)` -> `Pipeline`, `PromptBank`, `AsyncPipeline`.
Training (`edge_t2i.train`) and conversion (`edge_t2i.convert`) need the extras.
"""

import warnings as _warnings

from edge_t2i.errors import EdgeT2IError
from edge_t2i.runtime import AsyncPipeline, Pipeline, PromptBank, load

__version__ = "0.1.0"
__all__ = ["AsyncPipeline", "EdgeT2IError", "Pipeline", "PromptBank", "load", "__version__"]

_DEPRECATED = {"Generator": "Pipeline", "AsyncGenerator": "AsyncPipeline"}


def __getattr__(name: str) -> object:
    """The names of 0.1's runtime classes still resolve, with a DeprecationWarning."""
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        _warnings.warn(f"edge_t2i.{name} is now edge_t2i.{new}", DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module 'edge_t2i' has no attribute {name!r}")
