"""Recipes compared on your own art: KID/FID, the real-vs-real floor and seed diversity of checkpoints, plus a
sample sheet (real images | each checkpoint's seeds) for the model card.

    python benchmarks/own_art.py --real data/emoji --count 3812 \
        --run baseline=runs/emoji_baseline/checkpoint --run general=runs/emoji_general/checkpoint \
        --json docs/own_art.json --sheet docs/own_art_samples.png

Each checkpoint goes through `edge_t2i.eval.general.general_quality` (one image per real caption, seed = index,
against the real images; the floor from two halves of the real set; diversity over 8 seeds for 32 captions
with two real images each) with the same real sample, so their KIDs compare. KID's ratio is printed with the
spread of its subsets. The sheet shows, for 8 captions with two real images (seeded pick), those two, then 6
seeds of each checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge_t2i.data import read_imagefolder
from edge_t2i.data.imagefolder import premultiply
from edge_t2i.eval.general import format_general, general_quality
from edge_t2i.eval.quality import reference_images
from edge_t2i.imaging import image_grid, save_png
from edge_t2i.models.checkpoint import load_generator


def sheet(runs: dict[str, Path], real: str, out: str, captions: int = 8, seeds: int = 6) -> None:
    folder = read_imagefolder(real)
    rows: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(folder.records):
        rows[r["text"]].append(i)
    pairs = [t for t, idx in rows.items() if len(idx) == 2]
    texts = [pairs[i] for i in np.random.default_rng(5).choice(len(pairs), captions, replace=False)]
    rgba = any(load_generator(p).config.channels == 4 for p in runs.values())
    tiles, labels = [], []
    for t in texts:
        tiles += [premultiply(folder.image_rgba(i)) if rgba else folder.image(i) for i in rows[t]]
        labels += ["real", "real"]
        for name, path in runs.items():
            tiles += list(reference_images(path, [t] * seeds, list(range(seeds))))
            labels += [name] * seeds
    side = tiles[0].shape[0]
    tiles = [im if im.shape[0] == side else np.asarray(im) for im in tiles]
    save_png(out, image_grid(np.stack(tiles), columns=2 + seeds * len(runs), labels=labels, scale=1))
    print(f"wrote {out}: {captions} captions, rows: " + "; ".join(texts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="imagefolder of the real images")
    ap.add_argument("--run", action="append", required=True, help="NAME=CHECKPOINT (repeat)")
    ap.add_argument("--count", type=int, default=1000, help="images per set (default 1000)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--sheet", help="write the sample sheet PNG here")
    a = ap.parse_args()
    runs = {k: Path(v) for k, v in (r.split("=", 1) for r in a.run)}
    results = {}
    for name, path in runs.items():
        t0 = time.perf_counter()
        results[name] = {**general_quality(path, a.real, a.count), "seconds": round(time.perf_counter() - t0, 1),
                         "training": json.loads((path / "config.json").read_text()).get("training", {}).get(
                             "images_seen")}
        print(f"{name} ({path}, {results[name]['training']} images seen):\n{format_general(results[name])}")
    names = list(results)
    for other in names[1:]:
        print(f"KID {other} / {names[0]}: {results[other]['kid'] / results[names[0]]['kid']:.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    if a.sheet:
        sheet(runs, a.real, a.sheet)


if __name__ == "__main__":
    main()
