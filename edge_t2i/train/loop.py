"""The training loop: optimiser steps, EMA, evaluation, checkpoints (losses live in losses.py).

The same entry point runs on one device or under `torchrun --nproc_per_node N`
(ddp.py). Every batch is a pure function of (seed, step, rank) (data.py), so a
resumed run continues exactly as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from edge_t2i import _io
from edge_t2i.errors import CheckpointError, DataError
from edge_t2i.eval import oracle, quality
from edge_t2i.imaging import image_grid, save_png, to_uint8
from edge_t2i.models import checkpoint
from edge_t2i.models.networks import NetD, NetG, NoiseEncoder
from edge_t2i.progress import progress
from edge_t2i.train import state
from edge_t2i.train.augment import diff_augment
from edge_t2i.train.config import TrainConfig, explicit_fields, resolve_recipe
from edge_t2i.train.data import AUX_CLASSES, TrainData, batch_for_step, load_data
from edge_t2i.train.ddp import Distributed, average_gradients, setup_distributed
from edge_t2i.train.losses import Batch, discriminator_loss, generator_loss, matching_aware_gp

log = logging.getLogger(__name__)
STATE_DIR = "state"
CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"


class Augmented:
    """D seen through DiffAugment (train/augment.py): called like D, augments the image argument first."""

    def __init__(self, d: Any, policy: tuple[str, ...], gen: torch.Generator):
        self.d, self.policy, self.gen = d, policy, gen

    def __call__(self, image: torch.Tensor, embedding: torch.Tensor, **kwargs: Any) -> Any:
        return self.d(diff_augment(image, self.policy, self.gen), embedding, **kwargs)


class Trainer:
    """G, D, the EMA generator and (optionally) the noise encoder, with their optimisers."""

    def __init__(self, cfg: TrainConfig, d: Distributed, aux: bool = False):
        self.cfg, self.d = cfg, d
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        mc = cfg.model_config()
        self.aux_classes = AUX_CLASSES if aux else ()
        self.G = NetG(mc).to(d.device)
        self.D = NetD(mc, self.aux_classes).to(d.device)
        self.G_ema = NetG(mc).to(d.device).eval()  # filled by start() or load_state()
        self.G_ema.requires_grad_(False)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        self.E = NoiseEncoder(mc, cfg.encoder_dims).to(d.device) if cfg.encode_fraction > 0 else None
        self.opt_e = torch.optim.Adam(self.E.parameters(), lr=cfg.lr_g, betas=betas) if self.E else None
        self.step = 0
        self.elapsed = 0.0
        self.best_all = -1e30  # the best selection figure so far (oracle 'all', or -KID)
        self.eval_cache: dict[str, np.ndarray] = {}
        self.g_ddp: torch.nn.Module = self.G
        self.d_ddp: torch.nn.Module = self.D
        self.e_ddp: torch.nn.Module | None = self.E
        if d.world > 1:
            ids = [int(d.device.split(":")[1])] if d.device.startswith("cuda") else None
            self.g_ddp = DistributedDataParallel(self.G, device_ids=ids)
            self.d_ddp = DistributedDataParallel(self.D, device_ids=ids)
            if self.E is not None:
                self.e_ddp = DistributedDataParallel(self.E, device_ids=ids)
        self.amp = amp_dtype(cfg.amp, d.device)
        if cfg.compile:  # G only: D's spectral norm updates its vectors in place (AOTAutograd refuses that);
            self.g_ddp = torch.compile(self.g_ddp)  # type: ignore[assignment]  # self.G stays for state and EMA

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes' mixed-precision context (`cfg.amp`): torch.autocast, or nothing."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.d.device.split(":")[0], dtype=self.amp)

    def modules(self) -> list[tuple[str, torch.nn.Module]]:
        """What a state folder holds, by file name."""
        out = [("g", self.G), ("d", self.D), ("g_ema", self.G_ema)]
        return out + ([("e", self.E)] if self.E is not None else [])

    def optimizers(self) -> list[tuple[str, torch.optim.Optimizer]]:
        out = [("opt_g", self.opt_g), ("opt_d", self.opt_d)]
        return out + ([("opt_e", self.opt_e)] if self.opt_e is not None else [])

    # ---- one optimisation step -------------------------------------------------
    def train_step(self, data: TrainData) -> dict[str, float]:
        """One D step (with lazy MA-GP) and one G step on this step's batch; returns the losses."""
        batch = self.make_batch(data)
        policy = self.cfg.augment_policy()
        gen = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + self.step * 7_919 + self.d.rank) % 2**62)
        d_seen = Augmented(self.d_ddp, policy, gen) if policy else self.d_ddp
        with self.autocast():
            with torch.no_grad():
                fake = self.g_ddp(batch.z.detach(), batch.emb)
            loss_d, aux_d = discriminator_loss(d_seen, batch, fake, self.aux_classes, self.cfg.aux_weight)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.float().backward()
        gp = self.gradient_penalty(batch.real, batch.emb, Augmented(self.D, policy, gen) if policy else self.D)
        self.opt_d.step()

        sup = slice(batch.first_encoded if batch.first_encoded < len(batch.idx) else 0, None)
        masks = data.masks[batch.idx[sup]].to(self.d.device) if data.masks is not None else None
        with self.autocast():
            fake = self.g_ddp(batch.z, batch.emb)
            loss_g, parts = generator_loss(d_seen, batch, fake, self.G.last_layers, masks,
                                           self.aux_classes, self.cfg)
        for opt in (self.opt_g, self.opt_e):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        loss_g.float().backward()
        for opt in (self.opt_g, self.opt_e):
            if opt is not None:
                opt.step()
        self.update_ema()
        self.step += 1
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "gp": gp.item(), "aux_d": aux_d.item(),
                **{k: v.item() for k, v in parts.items()}, "kl": batch.kl.item()}

    def make_batch(self, data: TrainData) -> Batch:
        """This step's rows, mismatched captions and noise; with a noise encoder, the last
        `encode_fraction` of the rows take their noise from their real image (posterior)."""
        cfg, dev = self.cfg, self.d.device
        idx, mis, noise_seed = batch_for_step(cfg, self.step, len(data.images), self.d)
        real = data.images[idx].to(dev).float().div_(127.5).sub_(1.0)
        gen = torch.Generator(device="cpu").manual_seed(noise_seed)
        z = torch.randn(len(idx), self.G.config.nz, generator=gen).to(dev)
        first_encoded = len(idx) - (round(len(idx) * cfg.encode_fraction) if self.e_ddp is not None else 0)
        kl = torch.zeros((), device=dev)
        k = cfg.encoder_dims if self.e_ddp is not None else self.G.config.nz  # the dimensions that vary
        if cfg.diversity_weight > 0:
            z[1:first_encoded:2, k:] = z[0:first_encoded:2, k:][: first_encoded // 2]  # pairs differ in z[:k]
        named = data.names_background[idx].to(dev) if data.names_background is not None else None
        if first_encoded < len(idx):
            assert self.e_ddp is not None
            mu, logvar = self.e_ddp(real[first_encoded:])
            encoded = torch.cat([mu + (0.5 * logvar).exp() * z[first_encoded:, :k], z[first_encoded:, k:]], 1)
            keep = torch.ones(len(encoded), dtype=torch.bool, device=dev)
            if cfg.named_background_prior and named is not None:  # the caption, not the noise, says the background
                keep = named[first_encoded:].logical_not()
                encoded = torch.where(keep[:, None], encoded, z[first_encoded:])
            z = torch.cat([z[:first_encoded], encoded])
            if keep.any():
                kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)[keep].sum(1).mean()
        labels = data.labels[idx].to(dev) if self.aux_classes else None
        return Batch(idx, real, data.embeddings[idx].to(dev), data.embeddings[mis].to(dev), z, labels,
                     first_encoded, k, kl, named)

    def gradient_penalty(self, real: torch.Tensor, emb: torch.Tensor, d: Any) -> torch.Tensor:
        """Lazy MA-GP every `gp_every` steps, weighted by `gp_every`; its gradients join D's. `d` is the bare D
        (DDP cannot reduce a double backward: reduced by hand), seen through DiffAugment when the recipe has it
        (the gradient is taken with respect to the image before augmentation, as DiffAugment's StyleGAN2 R1)."""
        if self.step % self.cfg.gp_every:
            return torch.zeros(())
        gp = matching_aware_gp(d, real, emb)
        (self.cfg.gp_weight * self.cfg.gp_every * gp).backward()
        if self.d.world > 1:
            average_gradients(self.D, self.d.world)
        return gp

    def start(self, data: TrainData) -> None:
        """Before step 0 of a new run: text statistics from the training set, then an optional warm start."""
        if self.G.config.text_norm:
            self.G.set_text_stats(data.embeddings)
        if self.cfg.init_from:
            state.warm_start(Path(self.cfg.init_from), self.G, self.G_ema, self.D, self.E, data.embeddings)
        else:
            self.G_ema.load_state_dict(self.G.state_dict())

    @torch.no_grad()
    def update_ema(self) -> None:
        # A warm start already has a good average: no EMA warm-up that would overwrite it with G.
        warm = 1.0 if self.cfg.init_from else (1 + self.step) / (10 + self.step)
        decay = min(self.cfg.ema_decay, warm)
        if self.cfg.ema_rampup > 0:  # StyleGAN2-ADA: half-life <= ema_rampup x images seen
            half_life = self.cfg.ema_rampup * (self.step + 1) * self.cfg.batch_size
            decay = min(decay, 0.5 ** (self.cfg.batch_size / half_life))
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p, 1 - decay)

    # ---- state -----------------------------------------------------------------
    def save_state(self, run: Path) -> None:
        state.save_state(run / STATE_DIR, self.modules(), self.optimizers(),
                         {"step": self.step, "elapsed_s": self.elapsed, "best_all": self.best_all,
                          "config": asdict(self.cfg)})

    def load_state(self, run: Path) -> None:
        meta = state.read_meta(run / STATE_DIR)
        saved = state.saved_config(meta)
        if saved.model_config() != self.cfg.model_config():
            raise CheckpointError(f"cannot resume: {run} was trained with {saved.model_config()}, "
                                  f"not {self.cfg.model_config()}")
        state.load_state(run / STATE_DIR, self.modules(), self.optimizers(), meta)
        self.step, self.elapsed, self.best_all = meta["step"], meta["elapsed_s"], meta.get("best_all", -1.0)


def default_threads(world: int) -> int:
    """torch threads per rank for `--threads 0`: the cores not already busy (the CPU count less the 1-minute load
    average, rounded), shared among `world` ranks, at least 1. torch's threads spin-wait on a core another
    process holds: on 2 cores with one busy, 2 threads trained at 1.9 img/s and 1 thread at 18."""
    cores = os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # no load average on this system
        busy = 0
    return max(1, min(cores, cores - busy) // world)


def amp_dtype(amp: str, device: str) -> torch.dtype | None:
    """The autocast dtype of `--amp` on `device` ('cpu', 'cuda:N'): bfloat16 or None (float32 throughout).
    'auto' is bf16 on a CUDA GPU with bfloat16 support (Ampere and later; Jetson Orin) and off on CPU (a step took
    0.88x the time at batch 8, 0.93x at batch 4 with bf16 on an AMX Xeon, 1 thread: benchmarks/train_precision.py;
    not worth a change of numerics by default)."""
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None


def describe_recipe(cfg: TrainConfig) -> str:
    """One line for the start of a run: the recipe and what it turned on."""
    if cfg.recipe == "general":
        aug = ",".join(cfg.augment_policy()) or "off"
        return (f"recipe general (data {cfg.data}): batch {cfg.batch_size}, mode seeking {cfg.diversity_weight:g} "
                f"(cap {cfg.diversity_bound:g}), DiffAugment {aug}, noise in fusion {cfg.noise_in_fusion}, "
                f"EMA {cfg.ema_decay} ramp-up {cfg.ema_rampup}, {'RGBA' if cfg.rgba else 'RGB'}; "
                "best/ by KID on held-out rows")
    return (f"recipe shapes (data {cfg.data} is a `data shapes` folder): aligned L1 {cfg.align_weight}, "
            f"attribute head {cfg.aux_weight}; best/ by the attribute oracle")


def device_name(device: str) -> str:
    """What trained it, for the model card: the GPU's name, or the CPU's model and torch's thread count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from edge_t2i.runtime.cpu import cpu_model

    return f"{cpu_model()}, {torch.get_num_threads()} threads"


def dataset_summary(path: str) -> dict:
    """Name, count and licences of the training data (dataset_info.json), for the model card."""
    from edge_t2i.data.importer import dataset_info

    info = dataset_info(path)
    return {k: info[k] for k in ("name", "generator", "count", "licences", "alpha") if k in info}


def is_run(path: Path) -> bool:
    """Whether folder `path` is a training run this tool wrote (its train_config.json)."""
    return (path / "train_config.json").is_file()


def write_metrics(run: Path, row: dict) -> None:
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


@torch.no_grad()
def evaluate(trainer: Trainer, data: TrainData, run: Path) -> dict:
    """EMA samples: a grid of fixed prompts x seeds, and on the held-out prompts the oracle (shapes recipe) or
    KID against the held-out real images (general recipe; `eval_kid`, lower is better). Returns the metrics;
    "select" is the figure `best/` follows (higher is better)."""
    g, dev = trainer.G_ema, trainer.d.device
    rows, emb = data.eval_rows, torch.from_numpy(data.eval_embeddings).to(dev)
    gen = torch.Generator(device="cpu").manual_seed(1234)
    z = torch.randn(len(rows), g.config.nz, generator=gen).to(dev)

    def pixels(z_: torch.Tensor, emb_: torch.Tensor) -> np.ndarray:
        return to_uint8(g(z_, emb_).cpu().numpy())

    images = np.concatenate([pixels(z[i:i + 64], emb[i:i + 64]) for i in range(0, len(rows), 64)])
    n_prompts, n_seeds = min(8, len(rows)), 6
    zg = torch.randn(n_seeds, g.config.nz, generator=gen).to(dev)
    grid = [pixels(zg, emb[i:i + 1].expand(n_seeds, -1)) for i in range(n_prompts)]
    spread = float(np.mean([quality.pairwise_l1(block) for block in grid]))
    (run / "samples").mkdir(exist_ok=True)
    tile = image_grid(np.concatenate(grid), columns=n_seeds, scale=2)
    save_png(run / "samples" / f"step{trainer.step:06d}.png", tile)
    save_png(run / "samples" / "latest.png", tile)
    if trainer.cfg.recipe == "general":
        from edge_t2i.eval import kid

        if data.eval_images is None or len(data.eval_images) < 2:
            return {"eval_diversity": spread}
        if "real" not in trainer.eval_cache:  # the held-out real images' features, once per process
            trainer.eval_cache["real"] = kid.inception_features(data.eval_images)
        fake = kid.inception_features(images)
        real = trainer.eval_cache["real"]
        k = kid.kid(fake, real, subsets=50, subset_size=min(len(fake), len(real)))
        return {"eval_kid": k.mean, "eval_kid_std": k.std, "eval_diversity": spread, "select": -k.mean}
    expected = [oracle.expected_attributes(r) for r in rows]
    if all(all(v is None for v in e.values()) for e in expected):
        return {"eval_diversity": spread}  # captions the oracle cannot read: no attribute metrics
    scores = oracle.score_images(images, rows)
    out = {**{f"eval_{k}": v for k, v in scores.as_dict().items() if k != "count"}, "eval_diversity": spread}
    return {**out, "select": out["eval_all"]}


def _prepare(cfg: TrainConfig, resume: bool) -> tuple[Distributed, Path, TrainData, Trainer]:
    d = setup_distributed()
    if cfg.batch_size % d.world:
        raise DataError(f"batch size {cfg.batch_size} is not divisible by {d.world} ranks")
    threads = cfg.threads or default_threads(d.world)
    torch.set_num_threads(threads)
    run = _io.claim_output_dir(cfg.out, "training run", is_run, inputs=(cfg.data,))
    data = load_data(cfg, d.main)
    trainer = Trainer(cfg, d, aux=data.labels is not None)
    if resume:
        trainer.load_state(run)
    elif (run / STATE_DIR).exists():
        raise CheckpointError(f"{run} already holds a run: pass --resume to continue it, or pick another --out")
    else:
        trainer.start(data)
    if d.main:  # the run folder appears only once the data loaded and the models were built
        log.info("%s", describe_recipe(cfg))  # the first line of a run that starts (never before an error)
        if not cfg.threads and threads < (os.cpu_count() or 1) // d.world:
            log.info("%d torch thread(s) per rank: the other cores are busy (load average %.1f; --threads to "
                     "choose)", threads, os.getloadavg()[0])
        run.mkdir(parents=True, exist_ok=True)
        _io.write_json(run / "train_config.json", asdict(cfg))
    return d, run, data, trainer


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume with `resume`) and return the run folder; rank 0 writes everything.

    A config whose recipe is 'auto' is resolved first (`config.resolve_recipe`, its non-default fields taken as
    given): 'shapes' for a `data shapes` folder, 'general' otherwise.

    Raises: DataError (bad data or options, a shapes-only term on general data), CheckpointError (a run already
    in `cfg.out` without `resume`, or a state that does not fit), OutputError (`cfg.out` holds other files or
    overlaps the data), MissingExtraError."""
    if cfg.recipe == "auto":
        cfg = resolve_recipe(explicit_fields(cfg))
    d, run, data, trainer = _prepare(cfg, resume)
    bar = progress(range(trainer.step, cfg.steps), total=cfg.steps - trainer.step, desc="train", disable=not d.main)
    window_start, window_images = time.perf_counter(), 0
    for _ in bar:
        t0 = time.perf_counter()
        losses = trainer.train_step(data)
        trainer.elapsed += time.perf_counter() - t0
        window_images += cfg.batch_size
        rate = window_images / max(1e-9, time.perf_counter() - window_start)
        if trainer.step % 10 == 0 and hasattr(bar, "set_postfix"):
            bar.set_postfix(d=f"{losses['loss_d']:.2f}", g=f"{losses['loss_g']:.2f}", ips=f"{rate:.1f}")
        if d.main and trainer.step % 50 == 0 and not sys.stderr.isatty():
            log.info("step %d/%d %s %.1f img/s", trainer.step, cfg.steps,
                     " ".join(f"{k} {v:.3f}" for k, v in losses.items()), rate)
        if trainer.step % cfg.eval_every == 0 or trainer.step == cfg.steps:
            if d.main:
                checkpoint_and_log(trainer, data, run, losses, rate)
            window_start, window_images = time.perf_counter(), 0
    if d.world > 1:
        torch.distributed.barrier()
    return run


def checkpoint_and_log(trainer: Trainer, data: TrainData, run: Path, losses: dict, rate: float) -> None:
    """Evaluate the EMA generator, write checkpoint/ (and best/ when the oracle's 'all' improved),
    the state for resuming, and one metrics.jsonl row."""
    metrics = evaluate(trainer, data, run)
    training = {"steps": trainer.step, "images_seen": trainer.step * trainer.cfg.batch_size,
                "train_seconds": round(trainer.elapsed, 1), "config": asdict(trainer.cfg),
                "dataset_kind": trainer.cfg.recipe, "device": device_name(trainer.d.device),
                "precision": "bfloat16 autocast" if trainer.amp is not None else "float32",
                "dataset": dataset_summary(trainer.cfg.data)}
    select = metrics.pop("select", None)
    if select is not None and select > trainer.best_all:  # best_all: the best selection figure so far
        trainer.best_all = select
        with _io.atomic_dir(run / BEST_DIR) as tmp:
            checkpoint.save_generator(tmp, trainer.G_ema, {**training, "eval": metrics})
    with _io.atomic_dir(run / CHECKPOINT_DIR) as tmp:
        checkpoint.save_generator(tmp, trainer.G_ema, {**training, "eval": metrics})
    trainer.save_state(run)
    row = {"step": trainer.step, "images_seen": training["images_seen"], "train_seconds": training["train_seconds"],
           "images_per_s": round(rate, 2), **{k: round(v, 4) for k, v in losses.items()},
           **{k: round(v, 4) for k, v in metrics.items() if v is not None}}
    write_metrics(run, row)
    log.info("%s", json.dumps(row))
