"""DiffAugment (Zhao, Liu, Lin, Zhu, Han, "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020): the same random, differentiable transforms on every image D sees, real and generated, in both
players' steps, so D cannot memorise a small training set and G is not taught the augmentations.

The three policies follow the authors' `DiffAugment_pytorch.py` (MIT): color (brightness +-0.5, saturation
x [0, 2], contrast x [0.5, 1.5]), translation (up to 1/8 of the side, zero-padded), cutout (a square of half
the side set to 0). Inputs are float [B, C, H, W] in [-1, 1]; C = 4 (premultiplied RGBA) takes the colour
transforms on its first 3 channels only. Randomness comes from the `torch.Generator` passed in, so a run's
augmentations are a function of (seed, step), like its batches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, generator=gen).to(x.device, x.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    rgb, rest = x[:, :3], x[:, 3:]
    rgb = rgb + (_uniform(x, gen) - 0.5)
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (_uniform(x, gen) * 2) + mean
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (_uniform(x, gen) + 0.5) + mean
    return torch.cat([rgb, rest], 1) if rest.shape[1] else rgb


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (b, 1, 1), generator=gen).to(x.device)
    tx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=gen).to(x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + ty + 1).clamp(0, h + 1)
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=gen).to(x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=gen).to(x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gy = (gy + oy - ch // 2).clamp(0, h - 1)
    gx = (gx + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


OPERATIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """Apply `policy`'s operations in order (float [B, C, H, W] -> same shape); () returns `x` unchanged.
    Raises KeyError for an unknown operation (TrainConfig checks the policy first)."""
    for name in policy:
        x = OPERATIONS[name](x, gen)
    return x.contiguous() if policy else x
