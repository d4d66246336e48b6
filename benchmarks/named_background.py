"""How often a checkpoint obeys a caption that names the background ("on a black background").

    python benchmarks/named_background.py checkpoints/shapes64 [--count 500]

Test-split captions (seen pairs) that name a background, one sample each (seed = index),
judged by the oracle with the expected background included.
"""

from __future__ import annotations

import argparse

from edge_t2i.data.captions import parse_caption
from edge_t2i.data.shapes import iter_samples
from edge_t2i.eval import oracle
from edge_t2i.eval.quality import reference_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--count", type=int, default=500)
    a = ap.parse_args()
    pool = iter_samples(a.count * 6, seed=1, split="test", resolution=64)
    samples = [s for s in pool if not s.heldout and parse_caption(s.text).background][: a.count]
    rows = [{"text": s.text, "objects": [vars(s.objects[0])], "background": s.background} for s in samples]
    for ckpt in a.checkpoints:
        images = reference_images(ckpt, [s.text for s in samples], list(range(len(samples))))
        print(ckpt, oracle.score_images(images, rows))


if __name__ == "__main__":
    main()
