"""How often a checkpoint's text side reads a prompt's attributes right, text only (no images):
the text adapter on the sentence embedding vs the phrase reader on the word windows.

    python benchmarks/read_rate.py checkpoints/shapes64 [--count 500]

On `edge-t2i quality`'s held-out and novel phrasing sets (edge_t2i/eval/quality.py), prints per
attribute the share read right and the share with shape, color, size and position all right.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from edge_t2i.data.prompts import window_bags
from edge_t2i.eval.quality import caption_sets
from edge_t2i.models import text_encoder
from edge_t2i.models.checkpoint import load_generator
from edge_t2i.train.adapter import GROUPS

NAMES = ("shape", "color", "size", "position", "background")


def picks(logits: torch.Tensor) -> np.ndarray:
    out, start = [], 0
    for g in GROUPS:
        out.append(logits[:, start:start + len(g)].argmax(1).numpy())
        start += len(g)
    return np.stack(out, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--count", type=int, default=500)
    a = p.parse_args()
    g = load_generator(a.checkpoint)
    if g.text_adapter is None or g.phrase_reader is None:
        raise SystemExit(f"{a.checkpoint} has no text adapter and phrase reader (edge-t2i adapt adds them)")
    sets = caption_sets(2 * a.count)
    for name in ("heldout_phrasing", "novel_phrasing"):
        cases = sets[name][:a.count]
        texts = [s.text for s, _ in cases]
        truth = np.array([[GROUPS[i].index(v) for i, v in enumerate(
            (s.objects[0].shape, s.objects[0].color, s.objects[0].size, s.objects[0].position, named or "none"))]
            for s, named in cases])
        with torch.no_grad():
            emb = torch.from_numpy(text_encoder.encode(texts)) * g.text_scale + g.text_shift
            adapter = picks(g.text_adapter.heads(emb))
            unique, bags = window_bags(texts, g.config.phrase_reader)
            vec = torch.from_numpy(text_encoder.encode(unique))
            reader = picks(torch.stack([g.phrase_reader(vec[bag]) for bag in bags]))
        for label, got in (("adapter (sentence embedding)", adapter), ("phrase reader (word windows)", reader)):
            right = got == truth
            parts = "  ".join(f"{n} {right[:, i].mean():.1%}" for i, n in enumerate(NAMES))
            print(f"{name:<17} {label:<29} {parts}  all four {right[:, :4].all(1).mean():.1%}")


if __name__ == "__main__":
    main()
