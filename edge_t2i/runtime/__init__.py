"""The torch-free runtime: load a pack, look prompts up in its bank, generate images.

pack folder -> manifest (checked) -> PromptBank + backend -> Pipeline.generate -> uint8 frames;
AsyncPipeline runs it off a game's frame thread.
"""

from edge_t2i.runtime.async_pipeline import AsyncPipeline, Handle
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.noise import noise
from edge_t2i.runtime.pipeline import Pipeline, load

__all__ = ["AsyncPipeline", "Handle", "Pipeline", "PromptBank", "load", "noise"]
