"""`edge-t2i train`: its flags are generated from TrainConfig's fields (names, types, defaults, help)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, fields

from edge_t2i.cli.common import float_in, int_in

TRAIN_DESCRIPTION = ("Train the DF-GAN-style generator. The recipe follows the data: `edge-t2i data shapes` folders "
                     "train with the shapes recipe (its terms and oracle), anything else (e.g. from `edge-t2i data "
                     "import`) with the general recipe (noise in the fusion blocks, EMA ramp-up, DiffAugment on request, KID "
                     "on held-out rows picks best/); flags you give override the recipe's defaults. Uses CUDA when "
                     "present. Under `torchrun --nproc_per_node N` the same command trains with "
                     "DistributedDataParallel.")


def flag_name(f: Field) -> str:
    """The command-line flag of a TrainConfig field: `lr_g` -> `--lr-g` (or its `flag` metadata)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_config_flags(p: argparse.ArgumentParser, config_type: type, only_given: bool = False) -> None:
    """One flag per dataclass field; a bool field that defaults to True becomes `--no-...`. With `only_given`,
    a flag the user did not give leaves no attribute on the namespace (so a recipe can fill it in)."""
    for f in fields(config_type):
        meta, default = f.metadata, f.default
        assert default is not MISSING, f"{f.name} needs a default to become a flag"
        help_text = meta.get("help", "")
        if isinstance(default, bool):
            action = "store_false" if default else "store_true"
            text = f"turn off: {help_text}" if default else help_text
            p.add_argument(flag_name(f), dest=f.name, action=action,
                           default=argparse.SUPPRESS if only_given else default, help=text)
            continue
        kind = type(default)
        if "range" in meta:  # refused at parse time, in one line, before any work
            kind = (int_in if kind is int else float_in)(*meta["range"])
        extra = {k: meta[k] for k in ("choices", "metavar", "required") if k in meta}
        shown = "" if meta.get("required") else f" (default {default!r})" if default != "" else ""
        p.add_argument(flag_name(f), dest=f.name, type=kind, default=argparse.SUPPRESS if only_given else default,
                       help=help_text + shown, **extra)


def register(sub: argparse._SubParsersAction) -> None:
    from edge_t2i.train.config import TrainConfig

    p = sub.add_parser("train", help="train a text-conditioned GAN on an imagefolder", description=TRAIN_DESCRIPTION)
    add_config_flags(p, TrainConfig, only_given=True)
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.set_defaults(func=cmd_train)
    q = sub.add_parser(
        "adapt", help="add a text adapter so the generator reads what people type (minutes on a CPU)",
        description="Writes a copy of CHECKPOINT with an attribute bottleneck in front of the generator "
                    "(edge_t2i/train/adapter.py): sentences in phrasings the GAN never saw are mapped onto the "
                    "training caption with the same attributes, read from the sentence's word windows by a phrase "
                    "reader (edge_t2i/runtime/reader.py) when a pack encodes a prompt, and from the sentence "
                    "embedding inside the generator otherwise. The GAN's weights are unchanged.")
    q.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors)")
    q.add_argument("--out", required=True, help="the new checkpoint folder")
    q.add_argument("--steps", type=int_in(1, 200_000), default=1500, help="classifier training steps (default 1500)")
    q.add_argument("--reader-steps", type=int_in(1, 200_000), default=600,
                   help="phrase reader training steps, 128 sentences each (default 600)")
    q.add_argument("--augment", type=int_in(1, 32), default=5,
                   help="augmentation phrasings per attribute tuple (default 5)")
    q.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="seed (default 0)")
    q.add_argument("--force", action="store_true", help="replace a --out folder of files this tool did not write")
    q.set_defaults(func=cmd_adapt)


def cmd_adapt(a: argparse.Namespace) -> None:
    from edge_t2i.train.adapter import adapt_checkpoint

    record = adapt_checkpoint(a.checkpoint, a.out, a.steps, a.augment, a.seed, a.force, a.reader_steps)
    acc = ", ".join(f"{k} {v:.1%}" for k, v in record["reader_val_accuracy"].items())
    print(f"checkpoint: {a.out} (attributes the phrase reader reads from held-back sentences: {acc})")


def cmd_train(a: argparse.Namespace) -> None:
    from edge_t2i.errors import require

    require("torch", "train", "Training")
    from edge_t2i.train import TrainConfig, train
    from edge_t2i.train.config import resolve_recipe

    cfg = resolve_recipe({f.name: getattr(a, f.name) for f in fields(TrainConfig) if hasattr(a, f.name)})
    run = train(cfg, resume=a.resume)
    print(f"run folder: {run} (EMA generator checkpoint: {run / 'checkpoint'})")
