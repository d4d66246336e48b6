"""A contact sheet of a checkpoint: one row per prompt, one column per seed, judged by the oracle.

    python benchmarks/sample_sheet.py checkpoints/shapes64 --prompts docs/sheet_prompts.txt \
        --seeds 8 --out docs/samples_prompts.png

Prints, per prompt, how many seeds the oracle reads as asked (the four attributes) and the
mean pairwise L1 between the seeds (0..255: 0 is one image whatever the seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_t2i.data import vocab
from edge_t2i.data.captions import parse_caption
from edge_t2i.eval import oracle
from edge_t2i.eval.quality import pairwise_l1, reference_images
from edge_t2i.imaging import save_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--prompts", required=True, help="text file, one prompt per line")
    ap.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 per prompt (default 8)")
    ap.add_argument("--out", required=True, help="PNG to write")
    a = ap.parse_args()
    prompts = [p.strip() for p in Path(a.prompts).read_text().splitlines() if p.strip()]
    images = reference_images(a.checkpoint, [p for p in prompts for _ in range(a.seeds)],
                              list(range(a.seeds)) * len(prompts))
    for i, prompt in enumerate(prompts):
        block = images[i * a.seeds:(i + 1) * a.seeds]
        want = parse_caption(prompt)
        right = sum(all(getattr(oracle.judge(im), attr) == getattr(want, attr) for attr in vocab.ATTRIBUTES)
                    for im in block)
        spread = pairwise_l1(block)
        print(f"{right}/{a.seeds} as asked, spread {spread:5.1f}  {prompt}")
    save_grid(a.out, images, columns=a.seeds)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
