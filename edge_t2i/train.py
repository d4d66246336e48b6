"""Training: DF-GAN losses, EMA generator, exact resume, and DDP under torchrun.

The same entry point runs on one device or under `torchrun --nproc_per_node N`
(DistributedDataParallel; NCCL on GPUs, gloo on CPUs). Every batch (indices,
mismatched captions, noise) is a pure function of (seed, step, rank), so a
resumed run continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from edge_t2i import atomic, checkpoint, quality, text
from edge_t2i.config import ModelConfig
from edge_t2i.data import oracle
from edge_t2i.data.imagefolder import ImageFolder, preview_grid, read_imagefolder, save_png
from edge_t2i.errors import CheckpointError, DataError
from edge_t2i.model import Discriminator, Generator, NoiseEncoder, aux_loss
from edge_t2i.progress import progress

STATE_DIR = "state"
CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"


@dataclass(frozen=True)
class TrainConfig:
    data: str                      # imagefolder with metadata.jsonl
    out: str                       # run folder
    resolution: int = 64
    ngf: int = 16
    ndf: int = 16
    batch_size: int = 32           # global batch (split across DDP ranks)
    steps: int = 10_000            # total optimisation steps (a resumed run continues to this)
    lr_g: float = 2e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    gp_every: int = 4              # lazy MA-GP: every k D steps, weighted by k
    gp_weight: float = 2.0
    ema_decay: float = 0.999
    aux_weight: float = 0.5        # AC-GAN attribute loss when the data carries `objects` labels (0: off)
    recon_weight: float = 2.0      # low-res L1 on the real object's region, with `objects` labels (0: off)
    align_weight: float = 10.0     # L1 to the real image shifted (<= align_shift px) onto the fake (0: off)
    align_shift: int = 4
    align_object_weight: float = 4.0  # extra weight of the real object's pixels there (with `objects` labels)
    align_rotation: float = 20.0   # and rotations (degrees, about the object) it searches (with labels; 0: off)
    align_edge_weight: float = 1.0 # the same L1 on pixel differences (sharp edges and corners; 0: off)
    diversity_weight: float = 0.0  # mode seeking: two noises of one caption should give different images ...
    diversity_bound: float = 0.1   # ... up to this image distance per unit of noise distance (DSGAN's tau)
    encode_fraction: float = 0.0   # rows whose noise a NoiseEncoder reads from their real image (0: off) ...
    kl_weight: float = 0.01        # ... its KL to N(0, I); the reconstruction losses then apply to those rows only
    encoder_dims: int = 8          # leading noise dimensions the encoder predicts (the rest stay N(0, I) noise)
    noise_in_fusion: int = 0       # leading noise dimensions G's fusion MLPs see (model config; see Generator)
    saturation_weight: float = 1.0 # penalty on |pre-tanh| beyond SATURATION_LIMIT
    eval_every: int = 500          # sample grid + oracle metrics + checkpoint
    eval_count: int = 256          # records kept out of training for the oracle
    seed: int = 0
    threads: int = 0               # torch intra-op threads per rank (0: cores / ranks)
    text_norm: bool = True         # standardise sentence embeddings inside G (see model.Generator)
    init_from: str = ""            # warm start: a run's state/ folder or a checkpoint folder ("" = fresh)

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise DataError(f"batch size must be at least 2, got {self.batch_size}")
        if self.steps < 1 or self.eval_every < 1 or self.gp_every < 1:
            raise DataError("steps, eval-every and gp-every must be positive")
        if self.align_shift < 0:
            raise DataError(f"align shift must be >= 0 pixels, got {self.align_shift}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise DataError(f"ema decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.encode_fraction < 1.0:
            raise DataError(f"encode fraction must be in [0, 1) (some rows need prior noise), got {self.encode_fraction}")
        self.model_config()  # validates (noise_in_fusion too)
        if not 0 < self.encoder_dims <= self.model_config().nz:
            raise DataError(f"encoder dims must be in 1..{self.model_config().nz}, got {self.encoder_dims}")

    def model_config(self) -> ModelConfig:
        return ModelConfig(resolution=self.resolution, ngf=self.ngf, ndf=self.ndf, text_norm=self.text_norm,
                           noise_in_fusion=self.noise_in_fusion)


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


@dataclass
class TrainData:
    images: torch.Tensor        # uint8 [N, 3, R, R] (training records only)
    embeddings: torch.Tensor    # float32 [N, 384]
    eval_rows: list[dict]
    eval_embeddings: np.ndarray
    labels: torch.Tensor | None = None   # int64 [N, 4] attribute indices (-1 unknown), None without labels
    masks: torch.Tensor | None = None    # uint8 [N, R, R] object regions for the reconstruction anchor


def attribute_labels(records: list[dict] | tuple[dict, ...]) -> torch.Tensor | None:
    """(shape, color, size, position) indices from `objects` metadata; None if no record has them."""
    from edge_t2i.data import vocab

    names = {"shape": vocab.SHAPES, "color": vocab.COLORS, "size": vocab.SIZES, "position": vocab.POSITIONS}
    out = torch.full((len(records), 4), -1, dtype=torch.long)
    for i, r in enumerate(records):
        objs = r.get("objects")
        if isinstance(objs, list) and objs and isinstance(objs[0], dict):
            for j, (attr, values) in enumerate(names.items()):
                if objs[0].get(attr) in values:
                    out[i, j] = values.index(objs[0][attr])
    return out if (out >= 0).any() else None


AUX_CLASSES = (6, 8, 2, 9)  # shape, color, size, position
SATURATION_LIMIT = 2.0  # tanh(2) = 0.96: the data needs |pre-tanh| <= 1.47 with output_scale 1/0.9
RECON_POOL = 4          # the object anchor compares 16x16 averages of 64x64 images


def object_masks(images: np.ndarray, records: list[dict] | tuple[dict, ...]) -> np.ndarray:
    """uint8 [N, R, R]: 1 on each real image's object (dilated), 0 on its background.

    The background colour is the median of the border, so this needs no metadata
    beyond the fact that the image has one object on a plain background."""
    import cv2

    out = np.zeros(images.shape[:3], np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    for i, img in enumerate(images):
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        bg = np.median(border, axis=0)
        mask = (np.abs(img.astype(np.int16) - bg).max(axis=2) > 40).astype(np.uint8)
        out[i] = cv2.dilate(mask, kernel)
    return out


def load_data(cfg: TrainConfig, rank_main: bool) -> TrainData:
    folder: ImageFolder = read_imagefolder(cfg.data)
    n_eval = min(cfg.eval_count, len(folder) // 10)
    n_train = len(folder) - n_eval
    if n_train < cfg.batch_size:
        raise DataError(f"{cfg.data} has {n_train} training records, fewer than the batch size {cfg.batch_size}")
    emb = text.cached_embeddings(folder.texts, text.cache_path(cfg.data))
    images = folder.load_images(cfg.resolution, show_progress=rank_main)
    labels = attribute_labels(folder.records[:n_train])
    return TrainData(
        images=torch.from_numpy(images[:n_train]).permute(0, 3, 1, 2).contiguous(),
        embeddings=torch.from_numpy(emb[:n_train]),
        eval_rows=list(folder.records[n_train:]),
        eval_embeddings=emb[n_train:],
        labels=labels if cfg.aux_weight > 0 else None,
        masks=torch.from_numpy(object_masks(images[:n_train], folder.records[:n_train]))
        if labels is not None and (cfg.recon_weight > 0 or cfg.align_object_weight > 0 or cfg.align_rotation > 0)
        else None,
    )


def batch_for_step(cfg: TrainConfig, step: int, n: int, d: Distributed) -> tuple[np.ndarray, np.ndarray, int]:
    """(indices, mismatched-caption indices, noise seed) for one rank at one step."""
    rng = np.random.default_rng([cfg.seed, step, d.rank])
    shard = np.arange(d.rank, n, d.world)
    per_rank = cfg.batch_size // d.world
    idx = shard[rng.integers(len(shard), size=per_rank)]
    if cfg.diversity_weight > 0:  # pairs of prior rows share a caption (two noises each)
        prior = per_rank - round(per_rank * cfg.encode_fraction)
        idx[1:prior:2] = idx[0:prior:2][: prior // 2]
    mis = (idx + rng.integers(1, n, size=per_rank)) % n  # always another record
    return idx, mis, int(rng.integers(2**62))


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


def matching_aware_gp(discriminator: torch.nn.Module, image: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """DF-GAN's MA-GP: mean(||grad of D wrt (image, sentence)||^6) on real pairs."""
    image = image.detach().requires_grad_(True)
    emb = emb.detach().requires_grad_(True)
    out = discriminator(image, emb)
    gi, ge = torch.autograd.grad(out.sum(), (image, emb), create_graph=True)
    norm = torch.sqrt(gi.flatten(1).pow(2).sum(1) + ge.pow(2).sum(1) + 1e-12)
    return norm.pow(6).mean()


class Trainer:
    def __init__(self, cfg: TrainConfig, d: Distributed, aux: bool = False):
        self.cfg, self.d = cfg, d
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        mc = cfg.model_config()
        self.aux_classes = AUX_CLASSES if aux else ()
        self.G = Generator(mc).to(d.device)
        self.D = Discriminator(mc, self.aux_classes).to(d.device)
        self.G_ema = Generator(mc).to(d.device).eval()  # filled by start() or load_state()
        self.G_ema.requires_grad_(False)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        self.E = NoiseEncoder(mc, cfg.encoder_dims).to(d.device) if cfg.encode_fraction > 0 else None
        self.opt_e = torch.optim.Adam(self.E.parameters(), lr=cfg.lr_g, betas=betas) if self.E else None
        self.step = 0
        self.elapsed = 0.0
        self.best_all = -1.0
        self.g_ddp: torch.nn.Module = self.G
        self.d_ddp: torch.nn.Module = self.D
        self.e_ddp: torch.nn.Module | None = self.E
        if d.world > 1:
            ids = [int(d.device.split(":")[1])] if d.device.startswith("cuda") else None
            self.g_ddp = DistributedDataParallel(self.G, device_ids=ids)
            self.d_ddp = DistributedDataParallel(self.D, device_ids=ids)
            if self.E is not None:
                self.e_ddp = DistributedDataParallel(self.E, device_ids=ids)

    def modules(self) -> list[tuple[str, torch.nn.Module]]:
        """What a state folder holds, by file name."""
        out = [("g", self.G), ("d", self.D), ("g_ema", self.G_ema)]
        return out + ([("e", self.E)] if self.E is not None else [])

    def optimizers(self) -> list[tuple[str, torch.optim.Optimizer]]:
        out = [("opt_g", self.opt_g), ("opt_d", self.opt_d)]
        return out + ([("opt_e", self.opt_e)] if self.opt_e is not None else [])

    # ---- one optimisation step -------------------------------------------------
    def train_step(self, data: TrainData) -> dict[str, float]:
        cfg, dev = self.cfg, self.d.device
        idx, mis, noise_seed = batch_for_step(cfg, self.step, len(data.images), self.d)
        real = data.images[idx].to(dev).float().div_(127.5).sub_(1.0)
        emb = data.embeddings[idx].to(dev)
        emb_mis = data.embeddings[mis].to(dev)
        gen = torch.Generator(device="cpu").manual_seed(noise_seed)
        z = torch.randn(len(idx), self.G.config.nz, generator=gen).to(dev)
        # Rows [first_encoded:] take their noise from their real image (posterior), the rest from the prior.
        first_encoded = len(idx) - (round(len(idx) * cfg.encode_fraction) if self.e_ddp is not None else 0)
        kl = torch.zeros((), device=dev)
        k = cfg.encoder_dims if self.e_ddp is not None else self.G.config.nz  # the dimensions that vary
        if cfg.diversity_weight > 0:
            z[1:first_encoded:2, k:] = z[0:first_encoded:2, k:][: first_encoded // 2]  # pairs differ in z[:k]
        if first_encoded < len(idx):
            assert self.e_ddp is not None
            mu, logvar = self.e_ddp(real[first_encoded:])
            encoded = torch.cat([mu + (0.5 * logvar).exp() * z[first_encoded:, :k], z[first_encoded:, k:]], 1)
            z = torch.cat([z[:first_encoded], encoded])
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()

        labels = data.labels[idx].to(dev) if self.aux_classes else None
        with torch.no_grad():
            fake = self.g_ddp(z.detach(), emb)
        aux_d = torch.zeros((), device=dev)
        if labels is not None:
            d_real, logits = self.d_ddp(real, emb, with_aux=True)
            aux_d = aux_loss(logits, labels, self.aux_classes)
        else:
            d_real = self.d_ddp(real, emb)
        d_fake = self.d_ddp(fake, emb)
        d_mis = self.d_ddp(real, emb_mis)
        loss_d = F.relu(1 - d_real).mean() + 0.5 * (F.relu(1 + d_fake).mean() + F.relu(1 + d_mis).mean())
        loss_d = loss_d + cfg.aux_weight * aux_d
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        gp = torch.zeros(())
        if self.step % cfg.gp_every == 0:
            # On the bare module: DDP cannot reduce a double backward; reduce by hand below.
            gp = matching_aware_gp(self.D, real, emb)
            (cfg.gp_weight * cfg.gp_every * gp).backward()
            if self.d.world > 1:
                for p in self.D.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= self.d.world
        self.opt_d.step()

        aux_g = torch.zeros((), device=dev)
        fake = self.g_ddp(z, emb)
        if labels is not None:
            d_gen, logits = self.d_ddp(fake, emb, with_aux=True)
            aux_g = aux_loss(logits, labels, self.aux_classes)
            loss_g = -d_gen.mean() + cfg.aux_weight * aux_g
        else:
            loss_g = -self.d_ddp(fake, emb).mean()
        # The reconstruction losses pair fake and real rows: with an encoder, only the encoded rows.
        sup = slice(first_encoded if first_encoded < len(idx) else 0, None)
        masks = data.masks[idx[sup]].to(dev) if data.masks is not None else None
        recon = torch.zeros((), device=dev)
        if masks is not None:
            recon = object_l1(fake[sup], real[sup], masks)
            loss_g = loss_g + cfg.recon_weight * recon
        aligned = torch.zeros((), device=dev)
        if cfg.align_weight > 0:
            aligned = aligned_l1(fake[sup], real[sup], cfg.align_shift, masks, cfg.align_object_weight,
                                 cfg.align_rotation, cfg.align_edge_weight)
            loss_g = loss_g + cfg.align_weight * aligned
        loss_g = loss_g + cfg.kl_weight * kl
        diversity = torch.zeros((), device=dev)
        if cfg.diversity_weight > 0 and first_encoded >= 2:
            diversity = mode_seeking(fake[:first_encoded], z[:first_encoded, :k], cfg.diversity_bound)
            loss_g = loss_g - cfg.diversity_weight * diversity
        pre = self.G.last_preactivation
        saturation = F.relu(pre.abs() - SATURATION_LIMIT).pow(2).mean()
        loss_g = loss_g + cfg.saturation_weight * saturation
        self.opt_g.zero_grad(set_to_none=True)
        if self.opt_e is not None:
            self.opt_e.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.opt_e is not None:
            self.opt_e.step()
        self.update_ema()
        self.step += 1
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "gp": gp.item(), "aux_d": aux_d.item(),
                "aux_g": aux_g.item(), "recon": recon.item(), "aligned": aligned.item(),
                "diversity": diversity.item(), "kl": kl.item(), "saturation": saturation.item()}

    def start(self, data: TrainData) -> None:
        """Before step 0 of a new run: text statistics from the training set, then an optional warm start."""
        if self.G.config.text_norm:
            self.G.set_text_stats(data.embeddings)
        if self.cfg.init_from:
            warm_start(self, Path(self.cfg.init_from))
        else:
            self.G_ema.load_state_dict(self.G.state_dict())

    @torch.no_grad()
    def update_ema(self) -> None:
        # A warm start already has a good average: no EMA warm-up that would overwrite it with G.
        warm = 1.0 if self.cfg.init_from else (1 + self.step) / (10 + self.step)
        decay = min(self.cfg.ema_decay, warm)
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p, 1 - decay)

    # ---- state -----------------------------------------------------------------
    def save_state(self, run: Path) -> None:
        with atomic.atomic_dir(run / STATE_DIR) as tmp:
            for name, module in self.modules():
                checkpoint.save_tensors(tmp / f"{name}.safetensors", module.state_dict())
            groups = {}
            for name, opt in self.optimizers():
                sd = opt.state_dict()
                flat = {f"{i}.{k}": v for i, s in sd["state"].items() for k, v in s.items()}
                checkpoint.save_tensors(tmp / f"{name}.safetensors", flat)
                groups[name] = sd["param_groups"]
            atomic.write_json(tmp / "state.json", {
                "step": self.step, "elapsed_s": self.elapsed, "best_all": self.best_all,
                "config": asdict(self.cfg), "param_groups": groups})

    def load_state(self, run: Path) -> None:
        folder = run / STATE_DIR
        meta_path = folder / "state.json"
        if not meta_path.is_file():
            raise CheckpointError(f"cannot resume: {meta_path} not found")
        meta = json.loads(meta_path.read_text())
        saved = TrainConfig(**{k: v for k, v in meta["config"].items() if k in {f.name for f in fields(TrainConfig)}})
        if saved.model_config() != self.cfg.model_config():
            raise CheckpointError(f"cannot resume: {run} was trained with {saved.model_config()}, "
                                  f"not {self.cfg.model_config()}")
        for name, module in self.modules():
            if name == "e" and not (folder / "e.safetensors").is_file():
                continue  # an encoder switched on for the resumed part: it starts fresh
            module.load_state_dict(checkpoint.load_tensors(folder / f"{name}.safetensors"))
        for name, opt in self.optimizers():
            if name not in meta["param_groups"]:
                continue
            flat = checkpoint.load_tensors(folder / f"{name}.safetensors")
            state: dict[int, dict] = {}
            for key, value in flat.items():
                i, k = key.split(".", 1)
                state.setdefault(int(i), {})[k] = value
            opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
        self.step, self.elapsed, self.best_all = meta["step"], meta["elapsed_s"], meta.get("best_all", -1.0)


def fold_text_norm(state: dict, generator: Generator) -> dict:
    """Rewrite a raw-embedding generator's weights for `generator`'s standardised input, same function.

    With u = e * s + t, every linear W e + b that reads the embedding becomes (W / s) u + (b - (W / s) t)."""
    s, t = generator.text_scale, generator.text_shift
    nz, out = generator.config.nz, dict(state)
    out["text_scale"], out["text_shift"] = s.clone(), t.clone()
    for key, w in state.items():
        if key.endswith(".fc1.weight") or (key == "fc.weight" and generator.config.text_in_fc):
            cols = slice(nz, None) if key == "fc.weight" else slice(0, generator.config.cond_dim)
            w = w.clone()
            w[:, cols] = w[:, cols] / s
            bias_key = key[: -len("weight")] + "bias"
            out[key], out[bias_key] = w, state[bias_key] - w[:, cols] @ t
    return out


WIDEN_STD = 0.01  # new fusion inputs start small but not zero: with zero, neither they nor an encoder get a signal


def widen_fusion(state: dict, generator: Generator) -> dict:
    """Give a generator trained with fewer noise inputs to its fusion MLPs the extra input columns
    `generator` has (small random weights; the same random columns for G and its EMA)."""
    out, gen = dict(state), torch.Generator().manual_seed(0)
    for key, target in generator.state_dict().items():
        w = state.get(key)
        if key.endswith(".fc1.weight") and w is not None and w.shape[1] < target.shape[1]:
            extra = torch.randn(w.shape[0], target.shape[1] - w.shape[1], generator=gen) * WIDEN_STD
            out[key] = torch.cat([w, extra], 1)
    return out


def warm_start(trainer: Trainer, source: Path) -> None:
    """Start a new run from another run's weights (its state/ folder: G, EMA and D; or a checkpoint
    folder: the EMA generator for both). Optimisers start fresh. A generator trained on raw
    embeddings is folded into this one's standardised input (fold_text_norm)."""
    if (source / "g.safetensors").is_file():
        g = checkpoint.load_tensors(source / "g.safetensors")
        g_ema = checkpoint.load_tensors(source / "g_ema.safetensors")
        d_state = checkpoint.load_tensors(source / "d.safetensors")
    elif (source / checkpoint.GENERATOR_FILE).is_file():
        g = g_ema = checkpoint.load_tensors(source / checkpoint.GENERATOR_FILE)
        d_state = None
    else:
        raise CheckpointError(f"cannot warm start from {source}: it holds neither g.safetensors (a run's "
                              f"state/ folder) nor {checkpoint.GENERATOR_FILE} (a checkpoint folder)")
    for module, state in ((trainer.G, g), (trainer.G_ema, g_ema)):
        if trainer.G.config.text_norm and "text_scale" not in state:
            state = fold_text_norm(state, trainer.G)
        state = widen_fusion(state, trainer.G)
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"cannot warm start from {source}: {str(exc).splitlines()[0]}") from exc
    if d_state is not None:
        try:
            trainer.D.load_state_dict(d_state)
        except RuntimeError as exc:
            raise CheckpointError(f"cannot warm start D from {source}: {str(exc).splitlines()[0]}") from exc
    if trainer.E is not None and (source / "e.safetensors").is_file():
        trainer.E.load_state_dict(checkpoint.load_tensors(source / "e.safetensors"))


def write_metrics(run: Path, row: dict) -> None:
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


@torch.no_grad()
def evaluate(trainer: Trainer, data: TrainData, run: Path) -> dict:
    """EMA samples: a grid of fixed prompts x seeds, and the oracle on the held-out prompts."""
    g, dev = trainer.G_ema, trainer.d.device
    rows, emb = data.eval_rows, torch.from_numpy(data.eval_embeddings).to(dev)
    gen = torch.Generator(device="cpu").manual_seed(1234)
    z = torch.randn(len(rows), g.config.nz, generator=gen).to(dev)
    images = np.concatenate([to_uint8(g(z[i:i + 64], emb[i:i + 64])) for i in range(0, len(rows), 64)])
    n_prompts, n_seeds = min(8, len(rows)), 6
    zg = torch.randn(n_seeds, g.config.nz, generator=gen).to(dev)
    grid = [to_uint8(g(zg, emb[i:i + 1].expand(n_seeds, -1))) for i in range(n_prompts)]
    spread = float(np.mean([quality.pairwise_l1(block) for block in grid]))
    (run / "samples").mkdir(exist_ok=True)
    tile = preview_grid(np.concatenate(grid), columns=n_seeds, scale=2)
    save_png(run / "samples" / f"step{trainer.step:06d}.png", tile)
    save_png(run / "samples" / "latest.png", tile)
    expected = [oracle.expected_attributes(r) for r in rows]
    if all(all(v is None for v in e.values()) for e in expected):
        return {"eval_diversity": spread}  # captions the oracle cannot read: no attribute metrics
    scores = oracle.score([oracle.judge(im) for im in images], expected)
    return {**{f"eval_{k}": v for k, v in scores.as_dict().items() if k != "count"}, "eval_diversity": spread}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float NCHW -> uint8 NHWC, the same mapping the runtime uses."""
    arr = images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).cpu().numpy()


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) and return the run folder; rank 0 writes everything."""
    d = setup_distributed()
    if cfg.batch_size % d.world:
        raise DataError(f"batch size {cfg.batch_size} is not divisible by {d.world} ranks")
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // d.world))
    run = Path(cfg.out)
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
    data = load_data(cfg, d.main)
    trainer = Trainer(cfg, d, aux=data.labels is not None)
    if resume:
        trainer.load_state(run)
    elif (run / STATE_DIR).exists():
        raise CheckpointError(f"{run} already holds a run: pass --resume to continue it, or pick another --out")
    else:
        trainer.start(data)
    if d.main:
        atomic.write_json(run / "train_config.json", asdict(cfg))
    bar = progress(range(trainer.step, cfg.steps), total=cfg.steps - trainer.step, desc="train", disable=not d.main)
    window_start, window_images = time.perf_counter(), 0
    for _ in bar:
        t0 = time.perf_counter()
        losses = trainer.train_step(data)
        trainer.elapsed += time.perf_counter() - t0
        window_images += cfg.batch_size
        if trainer.step % 10 == 0:
            rate = window_images / max(1e-9, time.perf_counter() - window_start)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(d=f"{losses['loss_d']:.2f}", g=f"{losses['loss_g']:.2f}", ips=f"{rate:.1f}")
            if d.main and trainer.step % 50 == 0 and not sys.stderr.isatty():
                print(f"step {trainer.step}/{cfg.steps} d {losses['loss_d']:.3f} g {losses['loss_g']:.3f} "
                      f"aux {losses['aux_d']:.3f}/{losses['aux_g']:.3f} recon {losses['recon']:.3f} "
                      f"align {losses['aligned']:.3f} div {losses['diversity']:.3f} kl {losses['kl']:.2f} "
                      f"sat {losses['saturation']:.4f} {rate:.1f} img/s", flush=True)
        if trainer.step % cfg.eval_every == 0 or trainer.step == cfg.steps:
            rate = window_images / max(1e-9, time.perf_counter() - window_start)
            if d.main:
                checkpoint_and_log(trainer, data, run, losses, rate)
            window_start, window_images = time.perf_counter(), 0
    if d.world > 1:
        dist.barrier()
    return run


def checkpoint_and_log(trainer: Trainer, data: TrainData, run: Path, losses: dict, rate: float) -> None:
    metrics = evaluate(trainer, data, run)
    training = {"steps": trainer.step, "images_seen": trainer.step * trainer.cfg.batch_size,
                "train_seconds": round(trainer.elapsed, 1), "config": asdict(trainer.cfg)}
    if metrics.get("eval_all", -1.0) > trainer.best_all:
        trainer.best_all = metrics["eval_all"]
        with atomic.atomic_dir(run / BEST_DIR) as tmp:
            checkpoint.save_generator(tmp, trainer.G_ema, {**training, "eval": metrics})
    with atomic.atomic_dir(run / CHECKPOINT_DIR) as tmp:
        checkpoint.save_generator(tmp, trainer.G_ema, {**training, "eval": metrics})
    trainer.save_state(run)
    row = {"step": trainer.step, "images_seen": training["images_seen"], "train_seconds": training["train_seconds"],
           "images_per_s": round(rate, 2), **{k: round(v, 4) for k, v in losses.items()},
           **{k: round(v, 4) for k, v in metrics.items() if v is not None}}
    write_metrics(run, row)
    print(json.dumps(row), flush=True)

