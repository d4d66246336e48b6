"""How often `--unknown nearest` (and the error message's "closest" suggestion, the same rule) picks a bank
entry with the attributes a person meant, on the held-out phrasing set (edge_t2i/data/phrasings.py).

    python benchmarks/nearest_rate.py build/shapes64 [--count 500] [--seed 7]

Prints the share of sentences whose closest bank prompt has the same shape, color, size, position and
all four (read from the bank prompt by the dataset's caption parser).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pack")
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    import edge_t2i
    from edge_t2i.data import phrasings
    from edge_t2i.data.captions import parse_caption
    from edge_t2i.data.vocab import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES

    gen = edge_t2i.load(a.pack, threads=1)
    rng = np.random.default_rng(a.seed)
    names = ("shape", "color", "size", "position")
    hits = dict.fromkeys((*names, "all four"), 0)
    for i in range(a.count):
        meant = [str(rng.choice(v)) for v in (SHAPES, COLORS, SIZES, POSITIONS)]
        text = phrasings.phrase(rng, *meant, str(rng.choice(BACKGROUNDS)) if i % 2 else None, heldout=True)
        match = gen.bank.closest(text)
        c = parse_caption(match.prompt) if match is not None else None
        got = [getattr(c, n) if c else None for n in names]
        for n, x, y in zip(names, got, meant):
            hits[n] += x == y
        hits["all four"] += got == meant
    print(f"{a.count} held-out phrasings: " + ", ".join(f"{k} {v / a.count:.1%}" for k, v in hits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
