"""edge-t2i: text-to-image GAN generators as packs for real-time programs.

The public API is torch-free: `load(pack)` -> `Generator`, `PromptBank`, `AsyncGenerator`.
Training (`edge_t2i.train`) and conversion (`convert`) need the extras.
"""

from edge_t2i.errors import EdgeT2IError
from edge_t2i.runtime import AsyncGenerator, Generator, PromptBank, load

__version__ = "0.1.0"
__all__ = ["AsyncGenerator", "EdgeT2IError", "Generator", "PromptBank", "load", "__version__"]
