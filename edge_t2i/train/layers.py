"""Warm start of a layered generator from a single-layer one: its new heads fitted to its own images.

A layered NetG (`ModelConfig.layered`, after LR-GAN and FineGAN) composites a flat background
colour and an alpha-masked foreground. Its trunk and foreground head are a single-layer
generator's, so a trained single-layer generator is the natural start; only `to_alpha` and
`to_background` are new. Started at random they would blend the old image with an arbitrary colour
and the GAN would first have to recover what the old generator already drew. `fit_heads` instead
fits them, the rest frozen, to the old generator's own images with their backgrounds cleaned:
each pixel outside the object (cleanliness.object_mask: the largest coloured foreground component,
dilated) replaced by the image's border median. The layered generator then starts as the old one with flat backgrounds.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from edge_t2i.eval import cleanliness, oracle
from edge_t2i.imaging import to_uint8
from edge_t2i.models.networks import NetG
from edge_t2i.progress import progress

CLEAN_RADIUS = 3  # px kept around the oracle's foreground: the anti-aliased edge is the object's


def cleaned_targets(foreground: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets for single-layer images `foreground` [B, 3, R, R] in [-1, 1]:
    - images [B, 3, R, R] in [-1, 1]: every pixel farther than CLEAN_RADIUS px from the object
      (cleanliness.object_mask; none: all of them) set to the image's border median;
    - background colours [B, 3] in [-1, 1]: the border medians;
    - alpha [B, 1, R, R]: 1 on the object, 0 farther than CLEAN_RADIUS px from it, -1 (no target) between."""
    images = to_uint8(foreground.detach().clamp(-1, 1).cpu().numpy())  # [B, R, R, 3]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * CLEAN_RADIUS + 1,) * 2)
    targets, colors = images.copy(), np.zeros((len(images), 3), np.float32)
    alpha = np.zeros((len(images), 1, *images.shape[1:3]), np.float32)
    for i, img in enumerate(images):
        color = oracle.border_background(img).round()
        mask = cleanliness.object_mask(img)
        keep = cv2.dilate(mask, kernel).astype(bool) if mask is not None else np.zeros(img.shape[:2], bool)
        targets[i][~keep] = color
        colors[i] = color
        alpha[i, 0][keep] = -1.0
        if mask is not None:
            alpha[i, 0][mask.astype(bool)] = 1.0
    to_unit = lambda a: torch.from_numpy(a).float().div(127.5).sub(1.0)  # noqa: E731
    device = foreground.device
    return (to_unit(targets).permute(0, 3, 1, 2).to(device), to_unit(colors).to(device),
            torch.from_numpy(alpha).to(device))


def fit_heads(g: NetG, embeddings: torch.Tensor, steps: int = 300, batch: int = 64, seed: int = 0,
              lr: float = 3e-3) -> dict[str, float]:
    """Fit `g.to_alpha` and `g.to_background` (every other weight frozen) to `cleaned_targets` of g's
    own foreground, for random captions of `embeddings` [N, cond_dim] and z ~ N(0, I): L1 of the
    composite image and of the background colour, binary cross-entropy of alpha where it has a target.
    Returns {"l1": final image L1, "background_l1": final colour L1} (units of [-1, 1]).
    Raises ValueError for a single-layer g."""
    if not g.config.layered:
        raise ValueError("fit_heads needs a layered generator")
    gen = torch.Generator().manual_seed(seed)
    heads = [*g.to_alpha.parameters(), *g.to_background.parameters()]
    needs_grad = [p.requires_grad for p in heads]  # an EMA generator's are off
    for p in heads:
        p.requires_grad_(True)
    opt = torch.optim.Adam(heads, lr=lr)
    was_training = g.training
    g.eval()
    l1 = bg_l1 = torch.zeros(())
    device = next(g.parameters()).device
    for _ in progress(range(steps), total=steps, desc="fit layered heads"):
        rows = torch.randint(len(embeddings), (batch,), generator=gen)
        z = torch.randn(batch, g.config.nz, generator=gen).to(device)
        with torch.no_grad():
            x, cond = g.features(z, embeddings[rows].to(device))
        out = g.layers(x, cond)
        target, color, alpha = cleaned_targets(out["foreground"])
        image = out["background"] + out["alpha"] * (out["foreground"].detach() - out["background"])
        l1 = (image - target).abs().mean()
        bg_l1 = (out["background"][:, :, 0, 0] - color).abs().mean()
        known = alpha >= 0
        bce = F.binary_cross_entropy(out["alpha"][known].clamp(1e-6, 1 - 1e-6), alpha[known])
        opt.zero_grad(set_to_none=True)
        (l1 + bg_l1 + 0.1 * bce).backward()
        opt.step()
        l1, bg_l1 = l1.detach(), bg_l1.detach()
    g.train(was_training)
    for p, flag in zip(heads, needs_grad):
        p.requires_grad_(flag)
    return {"l1": l1.item(), "background_l1": bg_l1.item()}
