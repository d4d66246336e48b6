"""`edge-t2i eval | quality | sample`: score images with the oracle, measure and sample a checkpoint."""

from __future__ import annotations

import argparse
import json

from edge_t2i.cli.common import add_prompt_args, claim_image_output, int_in, prompts_and_seeds, write_images


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score an imagefolder with the attribute oracle")
    p.add_argument("dir", help="imagefolder; expected attributes from `objects` or parsed from `text`")
    p.add_argument("--json", action="store_true", help="print JSON: color, shape, size, position, all, count")
    p.add_argument("--limit", type=int_in(1, 10**9), default=None, help="score only the first N images")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("quality", help="issue 13's figures of a checkpoint against their targets",
                       description="Samples the checkpoint (torch, one image per caption, seed = index) on test-split "
                                   "captions of the shapes dataset and scores them with the attribute oracle: seen "
                                   "(shape, color) pairs, held-out pairs, held-out phrasings, novel phrasings, named "
                                   "backgrounds; clean images (blotchy backgrounds, background deviation, halo, second "
                                   "objects) over the seen set; position, rotation and background over 32 seeds of "
                                   "six captions against real images. Prints each figure next to its target.")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors)")
    p.add_argument("--count", type=int_in(1, 100_000), default=1000, help="captions of seen pairs (default 1000; the other sets take half)")
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
        _io.claim_output_file(a.json, inputs=(a.checkpoint,), what="--json")
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


def cmd_sample(a: argparse.Namespace) -> None:
    from edge_t2i.eval.quality import reference_images
    from edge_t2i.models.checkpoint import load_generator

    prompts, seeds, as_folder = prompts_and_seeds(a)
    claim_image_output(a, as_folder, inputs=(a.checkpoint,))
    load_generator(a.checkpoint)  # fail fast on a bad checkpoint, before encoding prompts
    images = reference_images(a.checkpoint, prompts, seeds)
    out = write_images(a, images, prompts, seeds, as_folder, inputs=(a.checkpoint,))
    print(f"wrote {len(images)} image(s) to {out}")
