"""The torch backend: the FP32 reference, eager or `torch.compile`d.

It lives outside `edge_t2i.runtime` on purpose: the runtime never imports torch.
Wrapped in the runtime's Generator, it measures exactly the same end-to-end path.
"""

from __future__ import annotations

import os

import numpy as np

from edge_t2i.runtime.backends import Backend, register


@register("torch")
class TorchBackend(Backend):
    name = "torch"
    precision = "fp32"

    def __init__(self, checkpoint_dir: str | os.PathLike[str], compile: bool = False, threads: int = 0):
        import torch

        from edge_t2i.checkpoint import load_generator

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = load_generator(checkpoint_dir)
        self.name = "torch-compile" if compile else "torch"
        self.fn = torch.compile(self.model, dynamic=False) if compile else self.model

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            out = self.fn(self.torch.from_numpy(feeds["z"]), self.torch.from_numpy(feeds["embedding"]))
        return {"image": out.numpy()}
