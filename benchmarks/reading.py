"""How often the runtime reads a typed prompt right: the attributes it draws, read from the prompt alone.

A prompt outside the bank is read by the pack's text encoder and phrase reader into the embedding of one
canonical caption (runtime/reader.py); that caption (the bank prompt at cosine ~1.0, `gen.explain`) is what the
generator draws. A prompt is *read right* when the caption has every attribute the prompt asked for. This
separates reading from drawing (the generator's own accuracy, benchmarks/typos.py and `edge-t2i quality`).
Nine sets of N prompts each, seeded:

  bank        captions of the bank itself (the sentence pattern the generator was trained on)
  heldout     held-out phrasings (data/phrasings.py HELDOUT_*: templates and synonyms training never saw)
  typos       the same held-out phrasings, one attribute word (4+ letters) with a one-letter typo
  descriptive held-out phrasings with one colour, size or position said by a DESCRIPTIVE word or phrase
              ("vermilion", "teeny", "on the far left"; data/phrasings.py, disjoint from every training phrasing)
  blind       the same with a colour or size word of DESCRIPTIVE_BLIND, written by someone who had not seen the
              lexicon or its sources ("garnet", "goldenrod", "puny", "whopping")
  blind2      the same with DESCRIPTIVE_BLIND_2, written blind by another helper after the lexicon's sources grew
              (2026-12-08): 87 colour names and 26 size words
  blind3      the same with DESCRIPTIVE_BLIND_3 (119 colour names, 30 size words), written blind by a third helper
              after the compound rule was chosen on the sets above
  blind4      the same with DESCRIPTIVE_BLIND_4, written blind by a fourth helper after WordNet's nouns of sizes
              and the unanimous lexicon-typo rule
  blind5      the same with DESCRIPTIVE_BLIND_5, written blind by a fifth helper after the rule for a phrase before
              a bank word of its attribute: the held-out measure of the reading as it is

each read with the runtime's correction (typos and the pack's lexicon, data/spelling.py) and without it. "item" is
the share whose typo was forgiven (read as the same prompt without it) or whose descriptive word was read right
(that attribute), apart from what else in the sentence the phrase reader misreads.

    python benchmarks/reading.py build/shapes64 --prompts 400 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from typos import with_typo  # noqa: E402

import edge_t2i  # noqa: E402
from edge_t2i.data import vocab  # noqa: E402
from edge_t2i.data.captions import parse_caption  # noqa: E402
from edge_t2i.data.phrasings import (  # noqa: E402
    DESCRIPTIVE_BLIND,
    DESCRIPTIVE_BLIND_2,
    DESCRIPTIVE_BLIND_3,
    DESCRIPTIVE_BLIND_4,
    DESCRIPTIVE_BLIND_5,
    descriptive,
    phrase,
)
from edge_t2i.data.spelling import Alternatives  # noqa: E402

BLIND = {"blind": DESCRIPTIVE_BLIND, "blind2": DESCRIPTIVE_BLIND_2, "blind3": DESCRIPTIVE_BLIND_3,
         "blind4": DESCRIPTIVE_BLIND_4, "blind5": DESCRIPTIVE_BLIND_5}

ATTRS = ("color", "shape", "size", "position")


def prompt_sets(gen, n: int, rng: np.random.Generator) -> dict[str, list[tuple[str, dict, str | None]]]:  # noqa: ANN001
    """{set name: [(prompt, the attributes it asks for, what else it is: the typo's clean prompt, the attribute said
    descriptively, or None)]}."""
    known = gen.bank.known_words
    sets: dict[str, list[tuple[str, dict, str | None]]] = {"bank": [], "heldout": [], "typos": [], "descriptive": [],
                                                           "blind": [], "blind2": [], "blind3": [], "blind4": [],
                                                           "blind5": []}
    for i in rng.permutation(len(gen.bank))[:n]:
        text = gen.bank.texts[int(i)]
        c = parse_caption(text)
        sets["bank"].append((text, {a: getattr(c, a) for a in ATTRS}, None))
    while min(len(sets[k]) for k in ("heldout", "typos", "descriptive")) < n:
        attrs = {"shape": str(rng.choice(vocab.SHAPES)), "color": str(rng.choice(vocab.COLORS)),
                 "size": str(rng.choice(vocab.SIZES)), "position": str(rng.choice(vocab.POSITIONS))}
        text = phrase(rng, attrs["shape"], attrs["color"], attrs["size"], attrs["position"], None, heldout=True)
        if len(sets["heldout"]) < n:
            sets["heldout"].append((text, attrs, None))
        made = with_typo(text, rng, known)
        if made is not None and len(sets["typos"]) < n:
            sets["typos"].append((made[0], attrs, text))
        if len(sets["descriptive"]) < n:
            said, attr = descriptive(rng, *(attrs[a] for a in ("shape", "color", "size", "position")))
            sets["descriptive"].append((said, attrs, attr))
    for name, table in BLIND.items():  # each its own stream: the sets before it stay as they were
        blind = np.random.default_rng(int(rng.integers(2**63)))
        for _ in range(n):
            attrs = {a: str(blind.choice(v)) for a, v in (("shape", vocab.SHAPES), ("color", vocab.COLORS),
                                                           ("size", vocab.SIZES), ("position", vocab.POSITIONS))}
            said, attr = descriptive(blind, *(attrs[a] for a in ("shape", "color", "size", "position")), table)
            sets[name].append((said, attrs, attr))
    return sets


def read_as(bank, text: str) -> str | None:  # noqa: ANN001
    """The bank caption a prompt is read as (what is drawn), or None."""
    nearest = bank.explain(text)["nearest"]
    return nearest["prompt"] if nearest else None


def read_right(gen, prompts: list[tuple[str, dict, str | None]], correct: bool) -> dict:  # noqa: ANN001
    """Share of prompts read right (all four attributes, and each), the share whose typo or descriptive word was read
    right ("item": read as the prompt without the typo / the attribute said descriptively read right), and the first
    misreadings."""
    bank = gen.bank
    saved = bank._known, bank._lexicon, bank._same  # noqa: SLF001 - the benchmark switches the correction off
    if not correct:
        bank._known, bank._lexicon, bank._same = frozenset(), {}, Alternatives()  # noqa: SLF001
    try:
        rows = []
        for text, want, extra in prompts:
            read = read_as(bank, text)
            got = parse_caption(read) if read else None
            row = {a: got is not None and getattr(got, a) == want[a] for a in ATTRS} | {"text": text, "read": read}
            if extra in ATTRS:
                row["item"], row["kind"] = row[extra], extra
            elif extra is not None:
                row["item"] = read == read_as(bank, extra)
            rows.append(row)
    finally:
        bank._known, bank._lexicon, bank._same = saved  # noqa: SLF001
    out = {"n": len(rows), "all": float(np.mean([all(r[a] for a in ATTRS) for r in rows]))}
    out |= {a: float(np.mean([r[a] for r in rows])) for a in ATTRS}
    if "item" in rows[0]:
        out["item"] = float(np.mean([r["item"] for r in rows]))
    kinds = sorted({r["kind"] for r in rows if "kind" in r})
    if kinds:  # the descriptive words of each attribute: read right, and how many
        out["item_by_attribute"] = {k: [float(np.mean([r["item"] for r in rows if r.get("kind") == k])),
                                        sum(r.get("kind") == k for r in rows)] for k in kinds}
    out["misread"] = [f"{r['text']} -> {r['read']}" for r in rows if not all(r[a] for a in ATTRS)][:8]
    return out


def by_word(gen, prompts: list[tuple[str, dict, str | None]], blind: dict) -> dict[str, list[int]]:  # noqa: ANN001
    """{word of the `blind` table: [prompts whose attribute it said was read right, prompts]}, with the correction."""
    words = sorted({w for table in blind.values() for ws in table.values() for w in ws}, key=len, reverse=True)
    out: dict[str, list[int]] = {}
    for text, want, attr in prompts:
        word = next(w for w in words if w in text)
        read = read_as(gen.bank, text)
        right = read is not None and getattr(parse_caption(read), str(attr)) == want[str(attr)]
        k, n = out.get(word, [0, 0])
        out[word] = [k + right, n + 1]
    return dict(sorted(out.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pack")
    ap.add_argument("--prompts", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    gen = edge_t2i.load(a.pack)
    sets = prompt_sets(gen, a.prompts, np.random.default_rng(a.seed))
    result: dict = {"pack": a.pack, "prompts": a.prompts}
    print(f"{'set':<12} {'correction':<10} {'all':>6} " + " ".join(f"{x:>8}" for x in ATTRS) + "     item")
    for name, prompts in sets.items():
        for correct in (True, False):
            r = read_right(gen, prompts, correct)
            result[f"{name}, {'corrected' if correct else 'not corrected'}"] = r
            item = f"{100 * r['item']:7.1f}%" if "item" in r else ""
            print(f"{name:<12} {'on' if correct else 'off':<10} {100 * r['all']:5.1f}% "
                  + " ".join(f"{100 * r[x]:7.1f}%" for x in ATTRS) + f"  {item}")
    print("item: typos read as the same prompt without its typo; descriptive: the attribute said descriptively "
          "read right")
    for name in ("descriptive", *BLIND):
        for k, (rate, count) in result[f"{name}, corrected"]["item_by_attribute"].items():
            print(f"{name} {k} words read right: {100 * rate:.1f}% of {count}")
    for name, table in BLIND.items():
        words = result[f"{name}, by word"] = by_word(gen, sets[name], table)
        print(f"{name}: {sum(k == n for k, n in words.values())} of {len(words)} words read right in every prompt; "
              "read wrong (read right / prompts): " + ", ".join(f"{w} {k}/{n}" for w, (k, n) in words.items() if k < n))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
