"""`edge-t2i`: thin subcommands that parse arguments and call typed functions.

User errors (EdgeT2IError) print as one line and exit 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence

from edge_t2i.errors import EdgeT2IError, InputError

EXIT_USER_ERROR = 2


def parse_seeds(spec: str) -> list[int]:
    """'0-7' or '1,5,9' or '3' -> list of non-negative seeds."""
    seeds: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise InputError(f"bad seeds '{spec}': use e.g. 0-7 or 1,5,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds.extend(range(lo, hi + 1))
    if not seeds or len(seeds) > 4096:
        raise InputError(f"bad seeds '{spec}': give between 1 and 4096 seeds")
    return seeds


# ---- data ------------------------------------------------------------------------
def cmd_data_shapes(a: argparse.Namespace) -> None:
    from edge_t2i.data import make_shapes_dataset, preview_grid, read_imagefolder
    from edge_t2i.data.imagefolder import save_png

    out = make_shapes_dataset(a.out, a.count, seed=a.seed, split=a.split, resolution=a.resolution,
                              novel_captions=a.novel_captions)
    folder = read_imagefolder(out)
    n = min(32, len(folder))
    images = folder.load_images(show_progress=False)[:n]
    preview = save_png(out / "preview.png", preview_grid(images, columns=8, scale=max(1, 128 // a.resolution)))
    print(f"wrote {len(folder)} images ({a.split}, {a.resolution} px) to {out}; preview: {preview}")
    for row in folder.records[:3]:
        print(f"  {row['file_name']}: {row['text']}")


def cmd_data_preview(a: argparse.Namespace) -> None:
    from edge_t2i.data import preview_grid, read_imagefolder
    from edge_t2i.data.imagefolder import save_png

    folder = read_imagefolder(a.dir)
    images = folder.load_images(show_progress=False)[: a.count]
    print(save_png(a.out, preview_grid(images, columns=8, scale=max(1, 128 // images.shape[1]))))


def cmd_eval(a: argparse.Namespace) -> None:
    from edge_t2i.data import oracle

    scores = oracle.evaluate_folder(a.dir, limit=a.limit)
    print(json.dumps(scores.as_dict(), indent=2) if a.json else scores.summary())


# ---- training --------------------------------------------------------------------
def cmd_train(a: argparse.Namespace) -> None:
    from dataclasses import fields

    from edge_t2i.train import TrainConfig, train

    # Every TrainConfig field has a flag of the same name (tested), bar the two spelled differently.
    given = {f.name: getattr(a, f.name) for f in fields(TrainConfig) if hasattr(a, f.name)}
    cfg = TrainConfig(**{**given, "text_norm": not a.no_text_norm, "init_from": a.init_from or ""})
    run = train(cfg, resume=a.resume)
    print(f"run folder: {run} (EMA generator checkpoint: {run / 'checkpoint'})")


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a text-conditioned GAN on an imagefolder",
                       description="Train the DF-GAN-style generator. Under `torchrun --nproc_per_node N` "
                                   "the same command trains with DistributedDataParallel.")
    p.add_argument("--data", required=True, help="imagefolder (metadata.jsonl + images)")
    p.add_argument("--out", required=True, help="run folder: checkpoint/, state/, samples/, metrics.jsonl")
    p.add_argument("--resolution", type=int, default=64, choices=(32, 64, 128, 256))
    p.add_argument("--ngf", type=int, default=16, help="generator width (default 16)")
    p.add_argument("--ndf", type=int, default=16, help="discriminator width (default 16)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size (default 32)")
    p.add_argument("--steps", type=int, default=10_000, help="total steps; --resume continues up to it")
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=4e-4)
    p.add_argument("--gp-every", type=int, default=4, help="lazy MA-GP interval (default 4)")
    p.add_argument("--aux-weight", type=float, default=0.5,
                   help="AC-GAN attribute loss weight, used when metadata has `objects` labels (0: off; default 0.5)")
    p.add_argument("--recon-weight", type=float, default=2.0,
                   help="low-res L1 anchor on the real object's region, with `objects` labels (0: off; default 2)")
    p.add_argument("--align-weight", type=float, default=10.0,
                   help="L1 to the real image translated onto the fake by up to --align-shift px (default 10; "
                        "for data where a caption fixes the image up to small shifts, like shapes; 0: off)")
    p.add_argument("--align-shift", type=int, default=4, help="largest translation --align-weight searches (px)")
    p.add_argument("--align-object-weight", type=float, default=4.0,
                   help="extra weight of the real object's pixels in the aligned L1 (with `objects` labels; default 4)")
    p.add_argument("--align-rotation", type=float, default=20.0,
                   help="largest rotation (degrees, about the real object, 5-degree steps) the aligned L1 searches "
                        "(with `objects` labels; default 20; 0: off)")
    p.add_argument("--align-edge-weight", type=float, default=1.0,
                   help="weight of the aligned L1 on pixel differences, which keeps edges and corners sharp "
                        "(default 1; 0: off)")
    p.add_argument("--diversity-weight", type=float, default=0.0,
                   help="mode-seeking weight: rows are paired by caption and two noises must give different "
                        "images (default 0: off)")
    p.add_argument("--encode-fraction", type=float, default=0.0,
                   help="fraction of each batch whose noise an encoder reads from the real image (BicycleGAN's "
                        "cVAE-GAN); the reconstruction losses then apply to those rows only, so what the caption "
                        "leaves open (background, jitter) is carried by z instead of averaged away (0: off)")
    p.add_argument("--kl-weight", type=float, default=0.01,
                   help="weight of the encoded noises' KL divergence to N(0, I) (default 0.01)")
    p.add_argument("--encoder-dims", type=int, default=8,
                   help="how many leading noise dimensions the encoder predicts; the rest stay N(0, I) noise "
                        "(default 8, as in BicycleGAN: a small code that random noise covers)")
    p.add_argument("--noise-in-fusion", type=int, default=0,
                   help="leading noise dimensions the generator's fusion MLPs see next to the sentence, as in "
                        "DF-GAN's code (a model setting; a warm start widens an older generator; default 0)")
    p.add_argument("--ema-decay", type=float, default=0.999,
                   help="decay of the shipped EMA generator (default 0.999; 0.995 follows a fast-moving G closer)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between samples/metrics/checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: cores / ranks)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--init-from", metavar="DIR",
                   help="warm start a new run from another run's state/ folder (G, EMA, D) or a checkpoint "
                        "folder (EMA G); optimisers start fresh")
    p.add_argument("--no-text-norm", action="store_true",
                   help="feed raw sentence embeddings to G (default: standardised with the training set's "
                        "mean/std, which makes text control learn much faster)")
    p.set_defaults(func=cmd_train)


# ---- parser ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-t2i",
        description="Text-to-image GANs for real-time programs: data -> train -> convert -> pack -> runtime.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is chosen and why")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="make or inspect datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("shapes", help="render the captioned shapes dataset as an imagefolder")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--count", type=int, default=1000, help="number of images (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="train never holds the held-out (shape, color) pairs")
    p.add_argument("--resolution", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--novel-captions", action="store_true",
                   help="phrase captions with synonyms and templates never used in training")
    p.set_defaults(func=cmd_data_shapes)
    p = data.add_parser("preview", help="save a grid of the first images of an imagefolder")
    p.add_argument("dir")
    p.add_argument("--out", default="preview.png")
    p.add_argument("--count", type=int, default=32)
    p.set_defaults(func=cmd_data_preview)

    p = sub.add_parser("eval", help="score an imagefolder with the attribute oracle")
    p.add_argument("dir", help="imagefolder; expected attributes from `objects` or parsed from `text`")
    p.add_argument("--json", action="store_true", help="print JSON: color, shape, size, position, all, count")
    p.add_argument("--limit", type=int, default=None, help="score only the first N images")
    p.set_defaults(func=cmd_eval)

    add_train(sub)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands defined next to what they drive (sample, convert, generate, info, bench)."""
    from edge_t2i import cli_more

    return cli_more.REGISTER


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        a.func(a)
    except EdgeT2IError as exc:
        if a.debug:
            raise
        print(f"edge-t2i: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("edge-t2i: interrupted (earlier artifacts are intact)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
