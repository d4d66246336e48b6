"""The torch backend: the FP32 reference, eager or `torch.compile`d, from a checkpoint folder.

It imports torch and the model code only when created (the runtime never imports
torch otherwise). Behind the same interface as the other backends, it measures
and renders exactly the same end-to-end path (`bench`, `sample`, `quality`).
"""

from __future__ import annotations

import os

import numpy as np

from edge_t2i.errors import require
from edge_t2i.runtime.backends.base import Backend, register


@register("torch")
class TorchBackend(Backend):
    """`infer({"z": float32 [B, nz], "embedding": float32 [B, dim]})` -> {"image": float32 [B, 3, R, R]}.

    Raises: MissingExtraError without torch (extra `train`), CheckpointError for a bad checkpoint."""

    name = "torch"
    precision = "fp32"

    def __init__(self, checkpoint_dir: str | os.PathLike[str], compile: bool = False, threads: int = 0,
                 dfgan: dict | None = None):
        """`checkpoint_dir`: this project's checkpoint folder, or with `dfgan` (the manifest's model dict:
        resolution, ngf, nz, cond_dim) a DF-GAN checkpoint file (edge_t2i.models.dfgan)."""
        torch = require("torch", "train", "The torch backend")
        from edge_t2i.models.checkpoint import load_generator
        from edge_t2i.models.dfgan import load_dfgan

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = load_dfgan(checkpoint_dir, **dfgan) if dfgan is not None else load_generator(checkpoint_dir)
        self.config = self.model.config
        self.name = "torch-compile" if compile else "torch"
        self.fn = torch.compile(self.model, dynamic=False) if compile else self.model

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            # the runtime hands read-only arrays (a cached z, a bank row): torch wants writable ones, so copy if so
            z, emb = (x if x.flags.writeable else x.copy() for x in (feeds["z"], feeds["embedding"]))
            out = self.fn(self.torch.from_numpy(z), self.torch.from_numpy(emb))
        return {"image": out.numpy()}
