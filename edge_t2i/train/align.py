"""The aligned L1: a supervised anchor that forgives the data's small shifts and rotations.

Each generated image is compared with its real image moved onto it (best shift, then best
rotation about the object), so the jitter the data has is left to z and the adversarial
loss instead of being averaged into a blur.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ROTATION_STEP = 5.0  # degrees between the rotations aligned_l1 tries


def aligned_l1(fake: torch.Tensor, real: torch.Tensor, max_shift: int, mask: torch.Tensor | None = None,
               object_weight: float = 0.0, max_rotation: float = 0.0, edge_weight: float = 0.0) -> torch.Tensor:
    """L1 between each fake and its real image moved onto it: translated by the shift (|dx|, |dy| <=
    max_shift, edges padded with the border, i.e. the background) that fits best, then, with `mask`
    (the real object's region, [B, R, R]), rotated about the object's centroid by the angle in
    +-max_rotation (steps of ROTATION_STEP) that fits best. The mask's pixels weigh 1 + object_weight,
    so the silhouette is not drowned by the background.

    A supervised anchor for shape, size, colour and background that leaves the data's small
    translation and rotation jitter to z and the adversarial loss: a plain L1 would average that
    jitter into its per-pixel median, which rounds hexagons into circles and cuts the points off stars.
    `edge_weight` adds the same L1 on horizontal and vertical pixel differences: a soft edge pays
    for every pixel it spreads over, so corners stay sharp."""
    s, side = max_shift, real.shape[-1]
    with torch.no_grad():
        padded = F.pad(real, (s, s, s, s), mode="replicate")
        pmask = F.pad(mask[:, None].float(), (s, s, s, s)) if mask is not None else None
        weight = 1.0 + object_weight * pmask if pmask is not None and object_weight > 0 else None
        dy, dx = _best_shift(fake, padded, weight, s)
        rows = torch.arange(len(real), device=real.device)
        target = padded.unfold(2, side, 1).unfold(3, side, 1)[rows, :, dy, dx]  # unfold: views, no copies
        tmask = pmask.unfold(2, side, 1).unfold(3, side, 1)[rows, :, dy, dx] if pmask is not None else None
        if tmask is not None and max_rotation > 0:
            target, tmask = _best_rotation(fake, target, tmask, object_weight, max_rotation)
        weight = 1.0 + object_weight * tmask if tmask is not None and object_weight > 0 else None
    diff = (fake - target).abs()
    loss = (diff * weight).mean() if weight is not None else diff.mean()
    if edge_weight > 0:
        for dim in (2, 3):
            n = fake.shape[dim] - 1
            grad = (fake.diff(dim=dim) - target.diff(dim=dim)).abs()
            w = weight.narrow(dim, 0, n) if weight is not None else None
            loss = loss + edge_weight * ((grad * w).mean() if w is not None else grad.mean())
    return loss


def _shift_costs(fake: torch.Tensor, padded: torch.Tensor, weight: torch.Tensor | None,
                 offsets: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """[B, len(offsets)] weighted L1 of `fake` against windows of `padded` at per-row (dy, dx)."""
    side, rows = fake.shape[-1], torch.arange(len(fake), device=fake.device)
    windows = padded.unfold(2, side, 1).unfold(3, side, 1)
    wwin = weight.unfold(2, side, 1).unfold(3, side, 1) if weight is not None else None
    costs = []
    for dy, dx in offsets:
        diff = (windows[rows, :, dy, dx] - fake).abs()
        costs.append((diff * wwin[rows, :, dy, dx] if wwin is not None else diff).mean((1, 2, 3)))
    return torch.stack(costs, 1)


def _best_shift(fake: torch.Tensor, padded: torch.Tensor, weight: torch.Tensor | None,
                s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row offsets (dy, dx) in [0, 2s] of the best window: every even offset at half resolution,
    then the 3x3 full-resolution neighbourhood of the winner (15 full-size costs instead of 81)."""
    b, dev = len(fake), fake.device
    half = [F.avg_pool2d(t, 2, ceil_mode=True) if t is not None else None for t in (fake, padded, weight)]
    grid = [(torch.full((b,), y, device=dev), torch.full((b,), x, device=dev))
            for y in range(s + 1) for x in range(s + 1)]
    coarse = _shift_costs(half[0], half[1], half[2], grid).argmin(1)
    cy, cx = 2 * (coarse // (s + 1)), 2 * (coarse % (s + 1))
    near = [((cy + oy).clamp(0, 2 * s), (cx + ox).clamp(0, 2 * s)) for oy in (-1, 0, 1) for ox in (-1, 0, 1)]
    fine = _shift_costs(fake, padded, weight, near).argmin(1)
    rows = torch.arange(b, device=dev)
    return torch.stack([y for y, _ in near], 1)[rows, fine], torch.stack([x for _, x in near], 1)[rows, fine]


def rotate_about_centroid(images: torch.Tensor, mask: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate [B, C, R, R] images (the mask is their last channel) about the mask's centroid."""
    side = images.shape[-1]
    m = mask[:, 0]
    total = m.sum((1, 2)).clamp_min(1e-6)
    coords = (torch.arange(side, device=images.device, dtype=images.dtype) + 0.5) / side * 2 - 1
    cy, cx = (m.sum(2) * coords).sum(1) / total, (m.sum(1) * coords).sum(1) / total
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # affine_grid maps output to input coordinates: p_in = R(-t) (p_out - centre) + centre
    theta = torch.stack([torch.stack([torch.full_like(cx, c), torch.full_like(cx, s), cx - c * cx - s * cy], 1),
                         torch.stack([torch.full_like(cx, -s), torch.full_like(cx, c), cy + s * cx - c * cy], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _best_rotation(fake: torch.Tensor, target: torch.Tensor, tmask: torch.Tensor, object_weight: float,
                   max_rotation: float) -> tuple[torch.Tensor, torch.Tensor]:
    steps = int(max_rotation // ROTATION_STEP)
    both = torch.cat([target, tmask], 1)
    options = [both if k == 0 else rotate_about_centroid(both, tmask, k * ROTATION_STEP)
               for k in range(-steps, steps + 1)]
    costs = [((o[:, :-1] - fake).abs() * (1.0 + object_weight * o[:, -1:])).mean((1, 2, 3)) for o in options]
    best = torch.stack(costs, 1).argmin(1)
    chosen = torch.stack(options, 1)[torch.arange(len(fake), device=fake.device), best]
    return chosen[:, :-1], chosen[:, -1:]
