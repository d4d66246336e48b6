"""Training (extra `train`): DF-GAN losses, EMA generator, exact resume, DDP under torchrun.

config.py (TrainConfig) -> data.py (batches) -> losses.py + align.py -> loop.py (steps,
evaluation, checkpoints) -> state.py (resume, warm start); ddp.py for torchrun.
"""

from edge_t2i.train.config import TrainConfig
from edge_t2i.train.loop import train

__all__ = ["TrainConfig", "train"]
