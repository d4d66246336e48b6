"""Training data in memory, and the batch of every (step, rank) as a pure function of the seed.

A resumed run continues exactly as if it had never stopped because indices, mismatched
captions and noise depend only on (seed, step, rank).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from edge_t2i.data import vocab
from edge_t2i.data.captions import parse_caption
from edge_t2i.data.imagefolder import ImageFolder, read_imagefolder
from edge_t2i.errors import DataError
from edge_t2i.eval import oracle
from edge_t2i.models import text_encoder
from edge_t2i.train.config import TrainConfig
from edge_t2i.train.ddp import Distributed


@dataclass
class TrainData:
    images: torch.Tensor        # uint8 [N, C, R, R] (training records only; C = 4: premultiplied RGBA)
    embeddings: torch.Tensor    # float32 [N, 384]
    eval_rows: list[dict]
    eval_embeddings: np.ndarray
    labels: torch.Tensor | None = None   # int64 [N, 4] attribute indices (-1 unknown), None without labels
    masks: torch.Tensor | None = None    # uint8 [N, R, R] object regions for the reconstruction anchor
    names_background: torch.Tensor | None = None  # bool [N]: the caption names the background (layered G only)
    eval_images: np.ndarray | None = None  # uint8 [M, R, R, C] the held-out rows' real images (KID in evaluate)


def attribute_labels(records: list[dict] | tuple[dict, ...]) -> torch.Tensor | None:
    """int64 [N, 4]: (shape, color, size, position) indices from `objects` metadata (-1 unknown);
    None if no record has them."""
    names = {"shape": vocab.SHAPES, "color": vocab.COLORS, "size": vocab.SIZES, "position": vocab.POSITIONS}
    out = torch.full((len(records), 4), -1, dtype=torch.long)
    for i, r in enumerate(records):
        objs = r.get("objects")
        if isinstance(objs, list) and objs and isinstance(objs[0], dict):
            for j, (attr, values) in enumerate(names.items()):
                if objs[0].get(attr) in values:
                    out[i, j] = values.index(objs[0][attr])
    return out if (out >= 0).any() else None


AUX_CLASSES = tuple(len(v) for v in (vocab.SHAPES, vocab.COLORS, vocab.SIZES, vocab.POSITIONS))


def object_masks(images: np.ndarray, records: list[dict] | tuple[dict, ...]) -> np.ndarray:
    """uint8 [N, R, R]: 1 on each real image's object (the oracle's foreground, dilated 5x5), 0 on
    its background. Needs no metadata beyond one object on a plain background."""
    out = np.zeros(images.shape[:3], np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.dilate(oracle.foreground_mask(img), kernel)
    return out


def held_out_order(n: int, n_eval: int, recipe: str, seed: int = 0) -> np.ndarray:
    """Record order with the held-out rows last. Shapes data is in random order already (the last rows are held
    out, as every shapes run so far); other data is often sorted (emoji by category), so its held-out rows are a
    seeded random sample, the same for every run on the same folder."""
    if recipe != "general" or n_eval == 0:
        return np.arange(n)
    held = np.sort(np.random.default_rng([seed, n]).choice(n, n_eval, replace=False))
    return np.concatenate([np.setdiff1d(np.arange(n), held), held])


def load_data(cfg: TrainConfig, rank_main: bool) -> TrainData:
    folder: ImageFolder = read_imagefolder(cfg.data)
    n_eval = min(cfg.eval_count, len(folder) // 10)
    n_train = len(folder) - n_eval
    if n_train < cfg.batch_size:
        raise DataError(f"{cfg.data} has {n_train} training records, fewer than the batch size {cfg.batch_size}")
    order = held_out_order(len(folder), n_eval, cfg.recipe)
    folder = ImageFolder(folder.root, tuple(folder.records[i] for i in order))
    emb = text_encoder.cached_embeddings(folder.texts, text_encoder.cache_path(cfg.data))
    images = folder.load_images(cfg.resolution, show_progress=rank_main, rgba=cfg.rgba)
    labels = attribute_labels(folder.records[:n_train])
    return TrainData(
        images=torch.from_numpy(images[:n_train]).permute(0, 3, 1, 2).contiguous(),
        embeddings=torch.from_numpy(emb[:n_train]),
        eval_rows=list(folder.records[n_train:]),
        eval_embeddings=emb[n_train:],
        eval_images=images[n_train:],
        labels=labels if cfg.aux_weight > 0 else None,
        masks=torch.from_numpy(object_masks(images[:n_train], folder.records[:n_train]))
        if labels is not None and (cfg.recon_weight > 0 or cfg.align_object_weight > 0 or cfg.align_rotation > 0)
        else None,
        names_background=torch.tensor([parse_caption(t).background is not None for t in folder.texts[:n_train]])
        if cfg.layered and cfg.background_weight > 0 else None,
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
