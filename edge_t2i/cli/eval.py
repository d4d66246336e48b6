"""`edge-t2i eval | quality | sample`: score images with the oracle, measure and sample a checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_t2i.cli.common import add_prompt_args, claim_image_output, int_in, prompts_and_seeds, write_images
from edge_t2i.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score an imagefolder with the attribute oracle")
    p.add_argument("dir", help="imagefolder; expected attributes from `objects` or parsed from `text`")
    p.add_argument("--json", action="store_true", help="print JSON: color, shape, size, position, all, count")
    p.add_argument("--limit", type=int_in(1, 10**9), default=None, help="score only the first N images")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("quality", help="a checkpoint's quality figures: KID/FID on any data, or the shapes oracle's",
                       description="With --real DIR (any imagefolder: what the generator was trained on): KID and FID "
                                   "of CHECKPOINT's images (one per real caption, seed = index; or a folder of "
                                   "generated images) against DIR's, the real-vs-real floor (two halves of DIR), and "
                                   "what seeds change for one caption against what the data varies (Inception and "
                                   "pixel distances; edge_t2i/eval/general.py). Without --real, for a generator "
                                   "trained on the shapes data: the attribute oracle's accuracy on test-split captions "
                                   "(seen and held-out pairs, held-out and novel phrasings, named backgrounds), clean "
                                   "images, and position, rotation and background over 32 seeds against real images, "
                                   "each figure next to its target.")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors), or with --real a "
                                      "folder of generated images (metadata.jsonl)")
    p.add_argument("--real", help="imagefolder of real images to compare with (KID, FID, diversity over seeds)")
    p.add_argument("--count", type=int_in(1, 100_000), default=1000,
                   help="images per set (default 1000; without --real: captions of seen pairs, the other sets half)")
    p.add_argument("--json", help="also write the figures as JSON")
    p.set_defaults(func=cmd_quality)

    p = sub.add_parser("sample", help="sample from a checkpoint with torch (the FP32 reference)")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors)")
    add_prompt_args(p)
    p.set_defaults(func=cmd_sample)


def cmd_eval(a: argparse.Namespace) -> None:
    from edge_t2i.eval import oracle

    scores = oracle.evaluate_folder(a.dir, limit=a.limit)
    print(json.dumps(scores.as_dict(), indent=2) if a.json else scores.summary())


def cmd_quality(a: argparse.Namespace) -> None:
    from edge_t2i import _io
    from edge_t2i.eval.quality import SETS, evaluate_generator
    from edge_t2i.eval.targets import format_targets

    if a.json:
        _io.claim_output_file(a.json, inputs=(a.checkpoint, *([a.real] if a.real else [])), what="--json")
    if a.real:
        from edge_t2i.eval.general import format_general, general_quality

        r = general_quality(a.checkpoint, a.real, a.count)
        print(format_general(r))
        if a.json:
            _io.write_json(a.json, r)
        return
    trained_on = _trained_on(a.checkpoint)
    if trained_on is not None:
        raise DataError(f"{a.checkpoint} was trained on general data, which the shapes oracle cannot judge: give "
                        f"--real with the imagefolder to compare with ({trained_on})")
    r = evaluate_generator(a.checkpoint, a.count)
    print("oracle accuracy (one image per caption, seed = caption index; background: captions that name one)")
    for name in SETS:
        s = r[name]
        bg = f"  background {s['background']:.1%}" if s["background"] is not None else ""
        print(f"{name:<17} n={r['count'][name]:<5} color {s['color']:.1%}  shape {s['shape']:.1%}  "
              f"size {s['size']:.1%}  position {s['position']:.1%}  all {s['all']:.1%}{bg}")
    print("diversity (mean pairwise L1 over 16 seeds, 0..255):",
          ", ".join(f"{p!r}: {v}" for p, v in r["diversity_l1"].items()))
    print()
    print(format_targets(r["targets"]))
    met = sum(row["met"] is True for row in r["targets"])
    unmeasured = sum(row["met"] is None for row in r["targets"])
    print(f"\n{met} of {len(r['targets'])} targets met" + (f" ({unmeasured} not measurable)" if unmeasured else ""))
    if a.json:
        _io.write_text(a.json, json.dumps(r, indent=2) + "\n")


def _trained_on(checkpoint: str) -> str | None:
    """The training data of a checkpoint trained with the general recipe (its config.json says), else None."""
    try:
        training = json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8")).get("training") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if training.get("dataset_kind") != "general":
        return None
    return str((training.get("config") or {}).get("data") or "the folder it was trained on")


def cmd_sample(a: argparse.Namespace) -> None:
    from edge_t2i.eval.quality import reference_images
    from edge_t2i.models.checkpoint import load_generator

    prompts, seeds, as_folder = prompts_and_seeds(a)
    claim_image_output(a, as_folder, inputs=(a.checkpoint,))
    load_generator(a.checkpoint)  # fail fast on a bad checkpoint, before encoding prompts
    images = reference_images(a.checkpoint, prompts, seeds)
    out = write_images(a, images, prompts, seeds, as_folder, inputs=(a.checkpoint,))
    print(f"wrote {len(images)} image(s) to {out}")
