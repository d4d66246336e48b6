"""Training losses (the StyleGAN3 split: losses here, optimiser steps in loop.py).

Sources: DF-GAN (Tao et al., CVPR 2022): hinge loss, matching-aware loss and MA-GP;
AC-GAN (Odena et al., 2017): the attribute head; DSGAN (Yang et al., ICLR 2019): mode
seeking; BicycleGAN (Zhu et al., NeurIPS 2017): the KL of the encoded noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from edge_t2i.train.align import aligned_l1
from edge_t2i.train.config import TrainConfig

SATURATION_LIMIT = 2.0  # tanh(2) = 0.96: the data needs |pre-tanh| <= 1.47 with output_scale 1/0.9
RECON_POOL = 4          # the object anchor compares 16x16 averages of 64x64 images


@dataclass
class Batch:
    """One rank's inputs for one step. Rows [first_encoded:] take their noise from their real
    image (the noise encoder's posterior), the rows before it from the prior."""

    idx: np.ndarray              # int64 [B] record indices
    real: torch.Tensor           # float [B, 3, R, R] in [-1, 1]
    emb: torch.Tensor            # float [B, dim]
    emb_mis: torch.Tensor        # float [B, dim], another record's caption (matching-aware loss)
    z: torch.Tensor              # float [B, nz]
    labels: torch.Tensor | None  # int64 [B, 4] attribute indices, -1 unknown
    first_encoded: int
    varying: int                 # leading noise dimensions that differ between paired rows
    kl: torch.Tensor             # KL of the encoded rows' noise to N(0, I), 0 without an encoder
    names_background: torch.Tensor | None = None  # bool [B]: the caption names the background


def object_l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between 16x16 averages of generated and real images, on the real object's region only.

    A supervised anchor for colour, position and size (like pix2pix's L1); the
    background and the fine shape are left to the adversarial loss and to z."""
    w = F.avg_pool2d(mask[:, None].float(), RECON_POOL)
    diff = (F.avg_pool2d(fake, RECON_POOL) - F.avg_pool2d(real, RECON_POOL)).abs().mean(1, keepdim=True)
    return (diff * w).sum() / w.sum().clamp_min(1.0)


def mode_seeking(fake: torch.Tensor, z: torch.Tensor, bound: float) -> torch.Tensor:
    """DSGAN's diversity term on row pairs (0, 1), (2, 3), ... that share a caption: image distance
    per unit of noise distance, capped at `bound` (the trainer maximises it).

    The aligned L1 forgives small shifts and rotations but does not ask for them, and a generator
    trained with it draws one image per caption whatever the noise; this term asks. On its own
    (weight 10 for 300 steps) it did not bring the spread back, at weight 100 it drew blotches;
    with the noise encoder (encode_fraction) saying what the spread should look like, it did:
    see the model card. With an encoder, pairs differ only in the encoded dimensions."""
    m = len(fake) // 2 * 2
    image = (fake[0:m:2] - fake[1:m:2]).abs().mean((1, 2, 3))
    noise = (z[0:m:2] - z[1:m:2]).abs().mean(1).clamp_min(1e-6)
    return (image / noise).clamp(max=bound).mean()


def matching_aware_gp(discriminator: torch.nn.Module, image: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """DF-GAN's MA-GP: mean(||grad of D wrt (image, sentence)||^6) on real pairs."""
    image = image.detach().requires_grad_(True)
    emb = emb.detach().requires_grad_(True)
    out = discriminator(image, emb)
    gi, ge = torch.autograd.grad(out.sum(), (image, emb), create_graph=True)
    norm = torch.sqrt(gi.flatten(1).pow(2).sum(1) + ge.pow(2).sum(1) + 1e-12)
    return norm.pow(6).mean()


def aux_loss(logits: torch.Tensor, labels: torch.Tensor, classes: tuple[int, ...]) -> torch.Tensor:
    """Mean cross-entropy over attribute heads; label -1 means unknown (ignored)."""
    losses = []
    for i, (chunk, n) in enumerate(zip(logits.split(list(classes), dim=1), classes)):
        target = labels[:, i]
        if (target >= 0).any():
            losses.append(F.cross_entropy(chunk, target, ignore_index=-1))
        del n
    return torch.stack(losses).mean() if losses else logits.sum() * 0.0


def discriminator_loss(d: torch.nn.Module, batch: Batch, fake: torch.Tensor, aux_classes: tuple[int, ...],
                       aux_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DF-GAN's hinge loss with the matching-aware term (real image, another caption), plus the
    AC-GAN attribute loss on real images when the batch has labels. Returns (loss, attribute loss)."""
    aux_d = torch.zeros((), device=batch.real.device)
    if batch.labels is not None:
        d_real, logits = d(batch.real, batch.emb, with_aux=True)
        aux_d = aux_loss(logits, batch.labels, aux_classes)
    else:
        d_real = d(batch.real, batch.emb)
    d_fake = d(fake, batch.emb)
    d_mis = d(batch.real, batch.emb_mis)
    loss = F.relu(1 - d_real).mean() + 0.5 * (F.relu(1 + d_fake).mean() + F.relu(1 + d_mis).mean())
    return loss + aux_weight * aux_d, aux_d


def border_median(images: torch.Tensor) -> torch.Tensor:
    """[B, 3]: per image and channel, the median of the outermost ring of pixels (the oracle's background)."""
    ring = torch.cat([images[:, :, 0], images[:, :, -1], images[:, :, 1:-1, 0], images[:, :, 1:-1, -1]], 2)
    return ring.median(dim=2).values


def background_l1(background: torch.Tensor, real: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean L1 between a layered generator's background colours [B, 3] and real images' border medians
    (the oracle's background), in units of [-1, 1]:
    - on the `rows` (bool [B]) whose real background the fake must have, its own row's;
    - on the other rows (a caption that names none, noise from the prior), the batch's real
      backgrounds matched by 1-D optimal transport on brightness: the free rows sorted by brightness
      against the real ones' quantiles (the real colour at rank (k + 1/2) / n), so that random
      noise draws the data's backgrounds in the data's proportions, not a blend of two or one for all."""
    real_bg = border_median(real)
    own = (background[rows] - real_bg[rows]).abs().mean(1)
    free = background[rows.logical_not()]
    if len(free):
        order = free.mean(1).argsort()
        ranked = real_bg[real_bg.mean(1).argsort()]
        quantile = ((torch.arange(len(free), device=free.device) + 0.5) * len(ranked) / len(free)).long()
        own = torch.cat([own, (free[order] - ranked[quantile]).abs().mean(1)])
    return own.mean()


def colour_line_distance(image: torch.Tensor, layers: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean distance of a layered generator's pixels from the segment between its background colour and
    its object colour (units of [-1, 1]): the two-colour edge term.

    In data of one flat object on a flat background (shapes), every pixel, anti-aliased edges included,
    is a mix of the two colours; a dark or light rim, a colour fringe or a blotch leaves that segment
    (the model card's halo measure, made differentiable). The background colour is the generator's own
    (`layers["background"]`), the object colour the foreground averaged with weights alpha^4 (its
    interior); both are held fixed here, so the term moves the pixels, not the colours."""
    bg = layers["background"].detach()                                  # [B, 3, 1, 1]
    w = layers["alpha"].detach().pow(4)
    obj = (w * layers["foreground"].detach()).sum((2, 3), keepdim=True) / w.sum((2, 3), keepdim=True).clamp_min(1e-6)
    axis = obj - bg
    t = ((image - bg) * axis).sum(1, keepdim=True) / axis.pow(2).sum(1, keepdim=True).clamp_min(1e-6)
    return (image - bg - t.clamp(0.0, 1.0) * axis).pow(2).sum(1).add(1e-8).sqrt().mean()


def generator_loss(d: torch.nn.Module, batch: Batch, fake: torch.Tensor, layers: dict[str, torch.Tensor],
                   masks: torch.Tensor | None, aux_classes: tuple[int, ...],
                   cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Adversarial + attribute + reconstruction anchors + KL - mode seeking + anti-saturation
    (+ for a layered generator: the background term, `background_l1`, and the two-colour edge term,
    `colour_line_distance`).

    The reconstruction anchors pair fake and real rows: with a noise encoder, only the encoded
    rows (whose noise is their real image's). `masks` are those rows' object regions. `layers` is
    the generator's `last_layers` (its heads' outputs for this batch)."""
    zero = torch.zeros((), device=fake.device)
    parts = {"aux_g": zero, "recon": zero, "aligned": zero, "diversity": zero}
    if batch.labels is not None:
        d_gen, logits = d(fake, batch.emb, with_aux=True)
        parts["aux_g"] = aux_loss(logits, batch.labels, aux_classes)
        loss = -d_gen.mean() + cfg.aux_weight * parts["aux_g"]
    else:
        loss = -d(fake, batch.emb).mean()
    fe = batch.first_encoded
    sup = slice(fe if fe < len(fake) else 0, None)
    if masks is not None:
        parts["recon"] = object_l1(fake[sup], batch.real[sup], masks)
        loss = loss + cfg.recon_weight * parts["recon"]
    if cfg.align_weight > 0:
        parts["aligned"] = aligned_l1(fake[sup], batch.real[sup], cfg.align_shift, masks, cfg.align_object_weight,
                                      cfg.align_rotation, cfg.align_edge_weight)
        loss = loss + cfg.align_weight * parts["aligned"]
    loss = loss + cfg.kl_weight * batch.kl
    if cfg.diversity_weight > 0 and fe >= 2:
        parts["diversity"] = mode_seeking(fake[:fe], batch.z[:fe, :batch.varying], cfg.diversity_bound)
        loss = loss - cfg.diversity_weight * parts["diversity"]
    parts["saturation"] = F.relu(layers["pre"].abs() - SATURATION_LIMIT).pow(2).mean()
    if "background" in layers:
        parts["saturation"] = parts["saturation"] + F.relu(
            layers["background_pre"].abs() - SATURATION_LIMIT).pow(2).mean()
        if cfg.background_weight > 0 and batch.names_background is not None:
            rows = batch.names_background.clone()
            rows[fe:] = True  # encoded rows: their noise is their real image's
            parts["background"] = background_l1(layers["background"][:, :, 0, 0], batch.real, rows)
            loss = loss + cfg.background_weight * parts["background"]
        if cfg.colour_line_weight > 0:
            parts["colour_line"] = colour_line_distance(fake, layers)
            loss = loss + cfg.colour_line_weight * parts["colour_line"]
    return loss + cfg.saturation_weight * parts["saturation"], parts
