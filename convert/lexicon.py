"""The bank's lexicon: descriptive words a pack reads as the words its bank knows (data/spelling.py applies it).

A generator trained on a few colour words ("red", "cyan", ...) draws nothing for "crimson" or "navy" but what the
text encoder makes of them, and all-MiniLM-L6-v2 places single colour names poorly ("crimson" is nearer "purple"
than "red", "navy" nearer "orange" than "blue"). Colour names have a measurable meaning instead: the xkcd colour
survey (Munroe 2010, 949 names with the RGB that about 222,000 people named them; public domain; shipped by
matplotlib as `XKCD_COLORS`) and the CSS Color Module Level 4 names (`CSS4_COLORS`, where xkcd has no such name)
give each name an sRGB colour, and color-name-list (npm, MIT; convert/colornames.py) 6,757 more names the two lack
("garnet", "papaya", "caribbean blue"), filtered by WordNet so that verbs, adjectives, adverbs and function words
stay words ("create", "calm", "left on red"); nouns do not ("hero", "money", "princess" read as colours). The palette is the survey's colour of each colour word the bank uses; a compound whose last word is the one
palette word in it reads as that word ("powder blue" is a blue, whatever its sRGB); every other name whose colour
is not grey (OKLab chroma >= MIN_CHROMA) maps to the nearest palette colour in OKLab (Ottosson 2020), lightness
weighted by LIGHTNESS_WEIGHT, since the bank's colour words name hues (weight chosen on the training synonyms of
data/captions.py and data/phrasings.py AUGMENT: 39 of 40 read right, against 30 at 1.0). The compound rule was
chosen on the colour names of the DESCRIPTIVE set and the first two blind sets together (127 of 183 names read
right in the lexicon against 124 without it, docs/figures.md); it reads people's "X blue" for a cyan ("pool
blue", "robin egg blue") as blue.

Colour names the survey and CSS do not have ("vermilion", "cardinal", "sanguine") and size words ("teeny",
"gigantic", "humongous") come from WordNet 3.1 (convert/wordnet.py): a colour name whose spelling with spaces or a
synonym in its synset has a measured colour ("sky-blue", "wine-colored") maps by that colour, any other to the
nearest colour of its hypernym chain the bank uses; a size word to the head of its adjective cluster ("small",
"large") where the bank uses that word.

A user's own lexicon is a JSON object {"phrase": "bank words"} (`read_lexicon`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import numpy as np

from edge_t2i.convert import wordnet
from edge_t2i.convert.colornames import MIN_CHROMA, chroma, color_names, oklab
from edge_t2i.data.prompts import prompt_words
from edge_t2i.data.spelling import MAX_LEXICON_WORDS
from edge_t2i.errors import ConvertError, PackError
from edge_t2i.runtime.bank import check_lexicon

LIGHTNESS_WEIGHT = 0.25
MIN_PALETTE = 3         # colour words a bank must use for a colour lexicon
SOURCE = ("colour names: xkcd colour survey (public domain), CSS4 and color-name-list (MIT), nearest bank colour in "
          "OKLab (a compound by its last colour word), then WordNet 3.1; size words: WordNet 3.1")

def color_lexicon(known: Iterable[str]) -> dict[str, str]:
    """{colour name: the bank's colour word nearest it} for a bank whose words (`known`) include at least
    MIN_PALETTE colour names; {} otherwise. Names made only of known words are left to the encoder. A compound
    whose last word is the one palette word in it maps to that word ("powder blue", "pistachio green", "sky-blue");
    other names with an sRGB colour (`color_names`) map by colour; WordNet's other colour names by their hypernym
    chain, to its nearest colour in the palette (none in it: not mapped)."""
    known = set(known)
    names = color_names()
    palette = [w for w in sorted(known) if w in names and chroma(names[w]) >= MIN_CHROMA]
    if len(palette) < MIN_PALETTE:
        return {}
    targets = oklab(np.array([names[w] for w in palette]))
    weight = np.array([LIGHTNESS_WEIGHT, 1.0, 1.0])

    def nearest(rgb: tuple[float, float, float]) -> str:
        return palette[int(np.argmin(np.linalg.norm((targets - oklab(np.array(rgb))) * weight, axis=1)))]

    lexicon = {name: nearest(rgb) for name, rgb in names.items()
               if not set(name.split()) <= known and chroma(rgb) >= MIN_CHROMA}
    for name, chain in wordnet.load()["color"].items():
        name = " ".join(prompt_words(name))
        if name in names or set(name.split()) <= known or len(name.split()) > MAX_LEXICON_WORDS:
            continue
        spelled = [" ".join(prompt_words(w.replace("-", " "))) for w in (name, *chain[0])]
        measured = next((names[w] for w in spelled if w in names), None)
        if measured is not None:
            if chroma(measured) >= MIN_CHROMA:
                lexicon[name] = nearest(measured)
            continue
        word = next((w for synset in chain for w in synset if w in palette), None)
        if word is not None:
            lexicon[name] = word
    for name in lexicon:  # a compound says its colour with its last word: "powder blue" is a blue
        parts = name.replace("-", " ").split()
        if len(parts) > 1 and [p for p in parts if p in palette] == parts[-1:]:
            lexicon[name] = parts[-1]
    return lexicon


def size_lexicon(known: Iterable[str]) -> dict[str, str]:
    """{size word: "small" or "large"} for those of the two the bank uses (`known`): WordNet's satellites of each
    and its nouns for a being of that size (convert/wordnet.py), less those made only of known words."""
    known = set(known)
    lexicon = {}
    data = wordnet.load()
    for head in data["size"]:
        words = data["size"][head] + data["size_nouns"][head]
        if head in known:
            for word in words:
                word = " ".join(prompt_words(word))
                if word and not set(word.split()) <= known and len(word.split()) <= MAX_LEXICON_WORDS:
                    lexicon[word] = head
    return lexicon


def read_lexicon(path: str | os.PathLike[str]) -> dict[str, str]:
    """A user's lexicon file: a JSON object {"phrase": "bank words"}, normalized as prompts are.
    Raises ConvertError (unreadable, not such an object, or out of the bounds of runtime/bank.py check_lexicon)."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.loads(fh.read(4 << 20))
    except (OSError, ValueError, RecursionError) as exc:
        raise ConvertError(f"--lexicon {path}: {getattr(exc, 'strerror', None) or str(exc)[:120]}") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConvertError(f"--lexicon {path}: expected a JSON object of phrase -> bank words")
    try:
        return check_lexicon({" ".join(prompt_words(k)): " ".join(prompt_words(v)) for k, v in raw.items()},
                             f"--lexicon {path}")
    except PackError as exc:
        raise ConvertError(str(exc)) from None


def lexicon_for(choice: str, bank_texts: list[str], shapes: bool) -> tuple[dict[str, str], str | None]:
    """(the lexicon, its source) for `--lexicon` `choice`: auto (`descriptive` where the generator was trained on
    shapes data, whose colours and sizes are attributes it draws; none otherwise), descriptive (colour names and
    size words, `color_lexicon` and `size_lexicon`), none, or a JSON file."""
    if choice == "none" or (choice == "auto" and not shapes):
        return {}, None
    if choice in ("auto", "descriptive"):
        from edge_t2i.data.spelling import vocabulary

        known = vocabulary(bank_texts)
        lexicon = {**size_lexicon(known), **color_lexicon(known)}
        return lexicon, SOURCE if lexicon else None
    return read_lexicon(choice), os.path.basename(choice)
