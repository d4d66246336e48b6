"""The torch-free runtime: load a pack, look prompts up in its bank, generate images."""

from edge_t2i.runtime.asyncgen import AsyncGenerator, Handle
from edge_t2i.runtime.bank import PromptBank, normalize_prompt
from edge_t2i.runtime.generator import Generator, load, noise, to_uint8

__all__ = ["AsyncGenerator", "Generator", "Handle", "PromptBank", "load", "noise", "normalize_prompt", "to_uint8"]
