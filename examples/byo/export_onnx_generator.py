"""A user's own generator, exported to ONNX the way its authors would: the input for `edge-t2i convert
model.onnx --io ...`.

    python examples/byo/export_onnx_generator.py --out /tmp/mine/generator.onnx --resolution 64
    edge-t2i convert /tmp/mine/generator.onnx --io z=noise,embedding=sentence,image=rgb --image-range 0,1 \\
        --bank-embeddings /tmp/mine/bank.safetensors --out /tmp/mine/pack

Nothing here uses edge-t2i: a small text-conditioned generator (linear -> 4x4, upsampling conv blocks
modulated by the sentence, sigmoid output, so images are in [0, 1]) with its own tensor names
(`noise`, `sentence` -> `rgb`), exported with a dynamic batch dimension. Random weights; train your own.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import nn


class UserGenerator(nn.Module):
    def __init__(self, nz: int = 64, text_dim: int = 256, width: int = 32, resolution: int = 64):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(nz, width * 4 * 4)
        blocks = int(math.log2(resolution // 4))
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(blocks))
        self.film = nn.ModuleList(nn.Linear(text_dim, 2 * width) for _ in range(blocks))
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, noise: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        x = self.fc(noise).reshape(-1, self.width, 4, 4)
        for conv, film in zip(self.convs, self.film):
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            scale, shift = film(sentence).chunk(2, dim=1)
            x = nn.functional.leaky_relu(conv(x) * (1 + scale[:, :, None, None]) + shift[:, :, None, None], 0.2)
        return torch.sigmoid(self.out(x))


def export(out: Path, resolution: int = 64, nz: int = 64, text_dim: int = 256, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = UserGenerator(nz, text_dim, 32, resolution).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.randn(2, nz), torch.randn(2, text_dim)), str(out),
                      input_names=["noise", "sentence"], output_names=["rgb"], opset_version=17, dynamo=False,
                      dynamic_axes={"noise": {0: "n"}, "sentence": {0: "n"}, "rgb": {0: "n"}})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--nz", type=int, default=64)
    p.add_argument("--text-dim", type=int, default=256)
    a = p.parse_args(argv)
    print(export(a.out, a.resolution, a.nz, a.text_dim))


if __name__ == "__main__":
    main()
