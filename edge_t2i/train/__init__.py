"""Training (extra `train`): DF-GAN losses, EMA generator, exact resume, DDP under torchrun.

config.py (TrainConfig) -> data.py (batches) -> losses.py + align.py -> loop.py (steps,
evaluation, checkpoints) -> state.py (resume, warm start); ddp.py for torchrun.
TrainConfig imports no torch (the CLI builds its flags from it in a runtime-only install); `train` does.
"""

from typing import Any

from edge_t2i.train.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name: str) -> Any:  # PEP 562: torch is imported when training starts, not with the package
    if name == "train":
        from edge_t2i.train.loop import train

        return train
    raise AttributeError(f"module 'edge_t2i.train' has no attribute {name!r}")
