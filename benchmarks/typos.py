"""How often a prompt with a one-letter typo is drawn right, with and without the runtime's typo correction.

For N captions of the pack's bank (the shapes pack: "a large red star in the center"), one attribute word of at
least four letters (colour, shape, size or position) gets one random edit (a letter deleted, inserted, replaced,
or two neighbours swapped) that makes it no word of the bank, e.g. "yelloow", "sqaure", "lrage", "centre" is not
made (only edits that leave the vocabulary). Each typo'd prompt is drawn through the pack's text encoder (and
phrase reader) at one seed, with the correction (data/spelling.py) and with it turned off, and the attribute
oracle judges the image against the caption without the typo. The clean captions, drawn from the bank, give the
ceiling. "Not corrected" turns off the bank's lexicon too (data/spelling.py).

    python benchmarks/typos.py build/shapes64 --prompts 400             # the bank's sentence pattern
    python benchmarks/typos.py build/shapes64 --prompts 400 --heldout   # held-out phrasings (data/phrasings.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge_t2i  # noqa: E402
from edge_t2i.data import vocab  # noqa: E402
from edge_t2i.data.spelling import MIN_LETTERS, Alternatives  # noqa: E402
from edge_t2i.eval.oracle import score_images  # noqa: E402

ATTRIBUTE_WORDS = {*vocab.COLORS, *vocab.SHAPES, *vocab.SIZES, *(w for p in vocab.POSITIONS for w in p.split("-"))}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typo(word: str, rng: np.random.Generator, known: frozenset[str]) -> str | None:
    """One random Damerau edit of `word` that is no known word; None if 50 tries find none."""
    for _ in range(50):
        i = int(rng.integers(len(word)))
        kind = rng.choice(["delete", "insert", "replace", "swap"])
        if kind == "delete":
            out = word[:i] + word[i + 1:]
        elif kind == "insert":
            out = word[:i] + str(rng.choice(list(LETTERS))) + word[i:]
        elif kind == "replace":
            out = word[:i] + str(rng.choice([c for c in LETTERS if c != word[i]])) + word[i + 1:]
        else:
            if i + 1 >= len(word) or word[i] == word[i + 1]:
                continue
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if out not in known and out != word:
            return out
    return None


def draw(gen, prompts: list[str], seeds: list[int], correct: bool) -> np.ndarray:  # noqa: ANN001
    saved = gen.bank._known, gen.bank._lexicon, gen.bank._same  # noqa: SLF001 - the benchmark switches the correction off by
    if not correct:                                  # emptying the vocabulary and the lexicon
        gen.bank._known, gen.bank._lexicon, gen.bank._same = frozenset(), {}, Alternatives()  # noqa: SLF001
    try:
        emb = np.stack([gen.bank.lookup(p, "encode") for p in prompts])
    finally:
        gen.bank._known, gen.bank._lexicon, gen.bank._same = saved  # noqa: SLF001
    return np.concatenate([gen.generate(emb[i:i + 64], seeds=seeds[i:i + 64]) for i in range(0, len(prompts), 64)])


def with_typo(text: str, rng: np.random.Generator, known: frozenset[str]) -> tuple[str, str] | None:
    """(`text` with a typo in one of its attribute words of MIN_LETTERS or more, "word -> typo"), or None."""
    words = text.split(" ")
    spots = [j for j, w in enumerate(words) if w in ATTRIBUTE_WORDS and len(w) >= MIN_LETTERS]
    if not spots:
        return None
    j = int(rng.choice(spots))
    bad = typo(words[j], rng, known)
    return None if bad is None else (" ".join([*words[:j], bad, *words[j + 1:]]), f"{words[j]} -> {bad}")


def captions(gen, n: int, rng: np.random.Generator, known: frozenset[str]):  # noqa: ANN001, ANN201
    """(clean bank captions, typo'd ones, edits, oracle rows): the bank's own sentence pattern."""
    clean, typod, edits = [], [], []
    for i in rng.permutation(len(gen.bank))[: n * 2]:
        caption = gen.bank.texts[int(i)]
        made = with_typo(caption, rng, known)
        if made is not None:
            clean.append(caption)
            typod.append(made[0])
            edits.append(made[1])
        if len(clean) == n:
            break
    return clean, typod, edits, [{"text": c} for c in clean]


def heldout(n: int, rng: np.random.Generator, known: frozenset[str]):  # noqa: ANN201
    """(clean held-out phrasings, typo'd ones, edits, oracle rows): the templates and synonyms training never saw
    (data/phrasings.py HELDOUT_*), a typo in one plain attribute word of each."""
    from edge_t2i.data.phrasings import phrase

    clean, typod, edits, rows = [], [], [], []
    while len(clean) < n:
        attrs = {"shape": str(rng.choice(vocab.SHAPES)), "color": str(rng.choice(vocab.COLORS)),
                 "size": str(rng.choice(vocab.SIZES)), "position": str(rng.choice(vocab.POSITIONS))}
        text = phrase(rng, attrs["shape"], attrs["color"], attrs["size"], attrs["position"], None, heldout=True)
        made = with_typo(text, rng, known)
        if made is not None:
            clean.append(text)
            typod.append(made[0])
            edits.append(made[1])
            rows.append({"objects": [attrs]})
    return clean, typod, edits, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pack")
    ap.add_argument("--prompts", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--heldout", action="store_true",
                    help="held-out phrasings (templates and synonyms training never saw) instead of bank captions")
    a = ap.parse_args()
    gen = edge_t2i.load(a.pack)
    rng = np.random.default_rng(a.seed)
    known = gen.bank.known_words
    if a.heldout:
        clean, typod, edits, rows = heldout(a.prompts, rng, known)
    else:
        clean, typod, edits, rows = captions(gen, a.prompts, rng, known)
    seeds = [10_000 + k for k in range(len(clean))]
    result = {"pack": a.pack, "prompts": len(clean), "heldout": a.heldout, "examples": edits[:10]}
    first = "clean phrasings (encoded)" if a.heldout else "clean captions (bank)"
    configs = [(first, clean, True), ("typos, corrected", typod, True), ("typos, not corrected", typod, False)]
    if a.heldout:  # what the correction does to phrasings without typos (their held-out synonyms among them)
        configs.append(("clean, not corrected", clean, False))
    for name, prompts, correct in configs:
        scores = score_images(draw(gen, prompts, seeds, correct), rows)
        result[name] = scores.as_dict()
        print(f"{name:<26} {scores.summary()}")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
