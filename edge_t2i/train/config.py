"""TrainConfig: every training option, its default and its help text, in one place.

The `edge-t2i train` flags are generated from these fields (`--lr-g` for `lr_g`),
and a run folder records the config as JSON (train_config.json, state/state.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_t2i.errors import DataError
from edge_t2i.models.config import RESOLUTIONS, ModelConfig


def option(default: Any, help: str, **cli: Any) -> Any:  # noqa: A002 - argparse's word
    """A dataclass field with the help text (and argparse extras such as `choices`, `flag`) of its flag."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class TrainConfig:
    data: str = option("", "imagefolder (metadata.jsonl + images) to train on", required=True)
    out: str = option("", "run folder: checkpoint/, best/, state/, samples/, metrics.jsonl", required=True)
    resolution: int = option(64, "image side in pixels", choices=RESOLUTIONS)
    ngf: int = option(16, "generator width: channels at full resolution")
    ndf: int = option(16, "discriminator width")
    batch_size: int = option(32, "global batch size (split across DDP ranks)")
    steps: int = option(10_000, "total optimisation steps; --resume continues up to it")
    lr_g: float = option(2e-4, "generator (and noise encoder) Adam learning rate")
    lr_d: float = option(4e-4, "discriminator Adam learning rate")
    beta1: float = option(0.0, "Adam beta1 (DF-GAN: 0)")
    beta2: float = option(0.9, "Adam beta2 (DF-GAN: 0.9)")
    gp_every: int = option(4, "lazy MA-GP: every k D steps, weighted by k")
    gp_weight: float = option(2.0, "MA-GP weight (DF-GAN: 2)")
    ema_decay: float = option(0.999, "decay of the shipped EMA generator (0.995 follows a fast-moving G closer)")
    aux_weight: float = option(0.5, "AC-GAN attribute loss weight, used when the metadata has `objects` labels (0: off)")
    recon_weight: float = option(2.0, "low-res L1 anchor on the real object's region, with `objects` labels (0: off)")
    align_weight: float = option(10.0, "L1 to the real image translated onto the fake by up to --align-shift px "
                                       "(for data where a caption fixes the image up to small shifts, like shapes; 0: off)")
    align_shift: int = option(4, "largest translation the aligned L1 searches (px)")
    align_object_weight: float = option(4.0, "extra weight of the real object's pixels in the aligned L1 "
                                             "(with `objects` labels)")
    align_rotation: float = option(20.0, "largest rotation (degrees, about the real object, 5-degree steps) the "
                                         "aligned L1 searches (with `objects` labels; 0: off)")
    align_edge_weight: float = option(1.0, "weight of the aligned L1 on pixel differences, which keeps edges and "
                                           "corners sharp (0: off)")
    diversity_weight: float = option(0.0, "mode seeking (DSGAN): rows are paired by caption and two noises must "
                                          "give different images (0: off)")
    diversity_bound: float = option(0.1, "mode seeking's cap on image distance per unit of noise distance (DSGAN's tau)")
    encode_fraction: float = option(0.0, "fraction of each batch whose noise an encoder reads from the real image "
                                         "(BicycleGAN's cVAE-GAN); the reconstruction losses then apply to those rows "
                                         "only, so what the caption leaves open is carried by z (0: off)")
    kl_weight: float = option(0.01, "weight of the encoded noises' KL divergence to N(0, I)")
    encoder_dims: int = option(8, "leading noise dimensions the encoder predicts; the rest stay N(0, I) noise "
                                  "(BicycleGAN: a small code that random noise covers)")
    noise_in_fusion: int = option(0, "leading noise dimensions G's fusion MLPs see next to the sentence, as in "
                                     "DF-GAN's code (a model setting; a warm start widens an older generator)")
    saturation_weight: float = option(1.0, "penalty on |pre-tanh| beyond SATURATION_LIMIT")
    eval_every: int = option(500, "steps between sample grids, oracle metrics and checkpoints")
    eval_count: int = option(256, "records kept out of training for the oracle")
    seed: int = option(0, "seed of initial weights, batches and noise")
    threads: int = option(0, "torch intra-op threads per rank (0: cores / ranks)")
    text_norm: bool = option(True, "standardise sentence embeddings inside G with the training set's mean/std "
                                   "(text control learns much faster)", flag="--no-text-norm")
    init_from: str = option("", "warm start a new run from another run's state/ folder (G, EMA, D) or a checkpoint "
                                "folder (EMA G); optimisers start fresh", metavar="DIR")

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
