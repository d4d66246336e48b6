"""TrainConfig: every training option, its default and its help text, in one place.

The `edge-t2i train` flags are generated from these fields (`--lr-g` for `lr_g`),
and a run folder records the config as JSON (train_config.json, state/state.json).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from edge_t2i.errors import DataError
from edge_t2i.models.config import RESOLUTIONS, ModelConfig


def option(default: Any, help: str, **cli: Any) -> Any:  # noqa: A002 - argparse's word
    """A dataclass field with the help text of its flag and its checks: `range` (lo, hi) inclusive, or
    argparse's `choices`; `flag` and `metavar` spell the flag."""
    return field(default=default, metadata={"help": help, **cli})


def check_ranges(config: object) -> None:
    """Every field with a `range` holds a number of its type (finite: no NaN, no inf) inside it."""
    for f in fields(config):  # type: ignore[arg-type]
        if "range" not in f.metadata:
            continue
        lo, hi = f.metadata["range"]
        value = getattr(config, f.name)
        kind = type(f.default)
        ok_type = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
        if not ok_type or not math.isfinite(value) or not lo <= value <= hi:
            raise DataError(f"{f.name.replace('_', '-')} must be a finite {kind.__name__} in [{lo:g}, {hi:g}], "
                            f"got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    data: str = option("", "imagefolder (metadata.jsonl + images) to train on", required=True)
    recipe: str = option("auto", "training recipe: 'shapes' (the shapes dataset's terms and defaults), 'general' "
                                 "(DF-GAN's losses with noise in the fusion blocks, an EMA ramp-up, batch 4 and mode "
                                 "seeking, for any other data) or 'auto' (shapes for `data shapes` folders, general otherwise)",
                         choices=("auto", "shapes", "general"))
    rgba: bool = option(False, "train on the images' alpha: premultiplied RGBA in, a 4-channel generator out "
                               "(general recipe; images without alpha count as opaque)", flag="--rgba")
    diffaugment: str = option("", "DiffAugment policy for D's inputs (Zhao et al., NeurIPS 2020): comma-separated "
                                  "from color, translation, cutout; '' or 'none': off", metavar="POLICY")
    ema_rampup: float = option(0.0, "EMA ramp-up (StyleGAN2-ADA): the EMA's half-life is at most this fraction of "
                                    "the images seen, so early weights leave the average fast (0: off)",
                               range=(0.0, 1.0))
    amp: str = option("auto", "mixed precision of G's and D's forward passes (torch.autocast, bfloat16; MA-GP "
                              "stays float32): 'bf16', 'off', or 'auto' (bf16 on a CUDA GPU that supports it, "
                              "off on CPU, where it gained 1.07-1.14x on an AMX Xeon)", choices=("auto", "bf16", "off"))
    compile: bool = option(False, "torch.compile the generator's training passes (not D: spectral norm updates "
                                  "its vectors in place); the first steps are slower while it compiles",
                           flag="--compile")
    out: str = option("", "run folder: checkpoint/, best/, state/, samples/, metrics.jsonl", required=True)
    resolution: int = option(64, "image side in pixels", choices=RESOLUTIONS)
    ngf: int = option(16, "generator width: channels at full resolution", range=(1, 512))
    ndf: int = option(16, "discriminator width", range=(1, 512))
    batch_size: int = option(32, "global batch size (split across DDP ranks)", range=(2, 4096))
    steps: int = option(10_000, "total optimisation steps; --resume continues up to it", range=(1, 10**9))
    lr_g: float = option(2e-4, "generator (and noise encoder) Adam learning rate", range=(0.0, 1.0))
    lr_d: float = option(4e-4, "discriminator Adam learning rate", range=(0.0, 1.0))
    beta1: float = option(0.0, "Adam beta1 (DF-GAN: 0)", range=(0.0, 0.9999))
    beta2: float = option(0.9, "Adam beta2 (DF-GAN: 0.9)", range=(0.0, 0.9999))
    gp_every: int = option(4, "lazy MA-GP: every k D steps, weighted by k", range=(1, 10**6))
    gp_weight: float = option(2.0, "MA-GP weight (DF-GAN: 2)", range=(0.0, 1e4))
    ema_decay: float = option(0.999, "decay of the shipped EMA generator (0.995 follows a fast-moving G closer)", range=(0.0, 0.999999))
    aux_weight: float = option(0.5, "AC-GAN attribute loss weight, used when the metadata has `objects` labels (0: off)", range=(0.0, 1e4))
    recon_weight: float = option(2.0, "low-res L1 anchor on the real object's region, with `objects` labels (0: off)", range=(0.0, 1e4))
    align_weight: float = option(10.0, "L1 to the real image translated onto the fake by up to --align-shift px "
                                       "(for data where a caption fixes the image up to small shifts, like shapes; 0: off)", range=(0.0, 1e4))
    align_shift: int = option(4, "largest translation the aligned L1 searches (px)", range=(0, 32))
    align_object_weight: float = option(4.0, "extra weight of the real object's pixels in the aligned L1 "
                                             "(with `objects` labels)", range=(0.0, 1e4))
    align_rotation: float = option(20.0, "largest rotation (degrees, about the real object, 5-degree steps) the "
                                         "aligned L1 searches (with `objects` labels; 0: off)", range=(0.0, 180.0))
    align_edge_weight: float = option(1.0, "weight of the aligned L1 on pixel differences, which keeps edges and "
                                           "corners sharp (0: off)", range=(0.0, 1e4))
    diversity_weight: float = option(0.0, "mode seeking (DSGAN): rows are paired by caption and two noises must "
                                          "give different images (0: off)", range=(0.0, 1e4))
    diversity_bound: float = option(0.1, "mode seeking's cap on image distance per unit of noise distance (DSGAN's tau)", range=(0.0, 1e3))
    encode_fraction: float = option(0.0, "fraction of each batch whose noise an encoder reads from the real image "
                                         "(BicycleGAN's cVAE-GAN); the reconstruction losses then apply to those rows "
                                         "only, so what the caption leaves open is carried by z (0: off)", range=(0.0, 0.999))
    kl_weight: float = option(0.01, "weight of the encoded noises' KL divergence to N(0, I)", range=(0.0, 1e4))
    encoder_dims: int = option(8, "leading noise dimensions the encoder predicts; the rest stay N(0, I) noise "
                                  "(BicycleGAN: a small code that random noise covers)", range=(1, 4096))
    noise_in_fusion: int = option(0, "leading noise dimensions G's fusion MLPs see next to the sentence, as in "
                                     "DF-GAN's code (a model setting; a warm start widens an older generator)", range=(0, 4096))
    layered: bool = option(False, "a layered generator: flat background colour + alpha-masked foreground "
                                  "(networks.NetG; a model setting; a warm start from a single-layer generator "
                                  "fits the new heads to its images first)", flag="--layered")
    background_weight: float = option(0.0, "layered only: L1 between the generated background colour and the real "
                                           "image's (its border median) on rows whose caption names the background "
                                           "and on rows whose noise is encoded (--encode-fraction > 0); other rows are "
                                           "matched to the batch's real backgrounds by brightness rank (0: off)",
                                       range=(0.0, 1e4))
    named_background_prior: bool = option(False, "layered, with --background-weight: rows with encoded noise whose "
                                                 "caption names the background take noise from the prior instead, so "
                                                 "the caption, not the noise, decides it", flag="--named-background-prior")
    colour_line_weight: float = option(0.0, "layered only: the two-colour edge term, for data of one flat object on a "
                                            "flat background: each pixel's distance from the line between the "
                                            "background's and the object's colour, so no rims or blotches (0: off)",
                                       range=(0.0, 1e4))
    saturation_weight: float = option(1.0, "penalty on |pre-tanh| beyond SATURATION_LIMIT", range=(0.0, 1e4))
    eval_every: int = option(500, "steps between sample grids, oracle metrics and checkpoints", range=(1, 10**9))
    eval_count: int = option(256, "records kept out of training for the oracle", range=(1, 10**6))
    seed: int = option(0, "seed of initial weights, batches and noise", range=(0, 2**62))
    threads: int = option(0, "torch intra-op threads per rank (0: the cores not busy at start / ranks; "
                             "more threads than free cores run several times slower)", range=(0, 256))
    text_norm: bool = option(True, "standardise sentence embeddings inside G with the training set's mean/std "
                                   "(text control learns much faster)", flag="--no-text-norm")
    init_from: str = option("", "warm start a new run from another run's state/ folder (G, EMA, D) or a checkpoint "
                                "folder (EMA G); optimisers start fresh", metavar="DIR")

    def __post_init__(self) -> None:
        check_ranges(self)
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
        if not self.layered and (self.background_weight > 0 or self.colour_line_weight > 0 or self.named_background_prior):
            raise DataError("--background-weight, --colour-line-weight and --named-background-prior need --layered")
        if self.named_background_prior and self.background_weight == 0:
            raise DataError("--named-background-prior needs the background term (--background-weight > 0)")
        bad = sorted(set(self.augment_policy()) - set(AUGMENTATIONS))
        if bad:
            raise DataError(f"unknown DiffAugment policy {', '.join(bad)}: choose from {', '.join(AUGMENTATIONS)} "
                            "(comma-separated) or none")
        if self.rgba and self.recipe == "shapes":
            raise DataError("--rgba trains with the general recipe (the shapes data has no alpha)")
        if self.recipe == "general":
            for name, why in SHAPES_ONLY.items():
                if getattr(self, name):
                    raise DataError(f"--{name.replace('_', '-')} is a shapes-dataset term, not for the general "
                                    f"recipe: {why} (config.resolve_recipe fills in the general recipe's defaults)")
        self.model_config()  # validates (noise_in_fusion too)
        if not 0 < self.encoder_dims <= self.model_config().nz:
            raise DataError(f"encoder dims must be in 1..{self.model_config().nz}, got {self.encoder_dims}")

    def augment_policy(self) -> tuple[str, ...]:
        """The DiffAugment operations, in order ((): none)."""
        parts = tuple(p.strip() for p in self.diffaugment.split(",") if p.strip())
        return () if parts == ("none",) else parts

    def model_config(self) -> ModelConfig:
        return ModelConfig(resolution=self.resolution, ngf=self.ngf, ndf=self.ndf, text_norm=self.text_norm,
                           noise_in_fusion=self.noise_in_fusion, layered=self.layered, channels=4 if self.rgba else 3)


AUGMENTATIONS = ("color", "translation", "cutout")

# What each recipe sets where the user gave no flag (the shapes recipe is TrainConfig's own defaults).
# general: DF-GAN (Tao et al., CVPR 2022; its code feeds [sentence, noise] to every fusion block: noise_in_fusion
# = nz), StyleGAN2-ADA's EMA (half-life 10k images at batch 32 -> decay 0.5^(32/10000) = 0.998, ramp-up 0.05),
# and none of the shapes dataset's terms. DiffAugment (Zhao et al., NeurIPS 2020) stays off: on the emoji data
# at ngf/ndf 16 its full policy collapsed G (KID on held-out rows 0.26 at 25,600 images against 0.14 without)
# and translation alone trailed too (0.26 against 0.15 at 12,800 images): docs/own-art.md.
# Batch 4 (8x the optimiser steps of batch 32 per image seen) and DSGAN's mode seeking (Yang et al., ICLR 2019)
# with its cap at 0.4 (a mean pixel change of about the data's own between two images of one caption, per unit
# of noise distance): on the emoji at 51,200 images seen, KID 0.067 against the old defaults' 0.091 (batch 32, no
# mode seeking), and seeds that change the image (pixel spread over seeds 1.18x the data's, against 0.25x); at
# 12,800 images, held-out KID 0.124 against 0.149 (batch 32) and 0.135 (batch 8): docs/own-art.md.
RECIPES: dict[str, dict[str, Any]] = {
    "shapes": {},
    "general": {"noise_in_fusion": 100, "ema_decay": 0.998, "ema_rampup": 0.05, "align_weight": 0.0,
                "aux_weight": 0.0, "recon_weight": 0.0, "batch_size": 4, "diversity_weight": 1.0,
                "diversity_bound": 0.4},
}
# Terms that only make sense on the shapes dataset (one flat object on a flat background, attribute labels).
SHAPES_ONLY = {"align_weight": "the aligned L1 assumes a caption fixes the image up to small shifts",
               "layered": "the layered generator draws one flat object on a flat background",
               "background_weight": "the background term reads a flat background colour",
               "colour_line_weight": "the two-colour edge term assumes one flat object on a flat background",
               "named_background_prior": "it needs captions that name a background colour",
               "aux_weight": "the attribute head needs the shapes dataset's `objects` labels",
               "recon_weight": "the object anchor needs the shapes dataset's `objects` labels"}


def dataset_kind(data: str) -> str:
    """'shapes' for a folder `edge-t2i data shapes` wrote (its dataset_info.json says so), else 'general'."""
    from pathlib import Path

    from edge_t2i.data.imagefolder import is_our_dataset

    return "shapes" if is_our_dataset(Path(data)) else "general"


def resolve_recipe(explicit: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from the options the user gave (`explicit`, by field name) and the recipe's defaults.

    `recipe` 'auto' becomes the data's kind (`dataset_kind`). Raises DataError for the shapes recipe on other
    data and for a shapes-only term given on general data (one line, with the reason)."""
    kind = dataset_kind(explicit.get("data", ""))
    recipe = explicit.get("recipe", "auto")
    if recipe == "auto":
        recipe = "general" if explicit.get("rgba") else kind
    if recipe == "shapes" and kind != "shapes":
        raise DataError(f"--recipe shapes is for `edge-t2i data shapes` folders, and {explicit.get('data')} is not one "
                        "(its dataset_info.json does not say so): use --recipe general")
    return TrainConfig(**{**RECIPES[recipe], **explicit, "recipe": recipe})


def explicit_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The fields of `cfg` that differ from TrainConfig's defaults (what a Python caller set)."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if getattr(cfg, f.name) != f.default}
