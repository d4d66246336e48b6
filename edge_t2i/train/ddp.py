"""DistributedDataParallel from the environment: the same entry point on one device or under torchrun.

`torchrun --nproc_per_node N` sets RANK / WORLD_SIZE / LOCAL_RANK (nanoGPT's pattern);
NCCL on GPUs, gloo on CPUs. Rank 0 writes everything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Detect torchrun from the environment (RANK/WORLD_SIZE), like nanoGPT."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(device="cuda" if torch.cuda.is_available() else "cpu")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return Distributed(rank, world, f"cuda:{local}" if cuda else "cpu")


def average_gradients(module: torch.nn.Module, world: int) -> None:
    """All-reduce and average `module`'s gradients by hand (for a double backward DDP cannot reduce)."""
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world
