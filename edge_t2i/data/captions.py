"""The caption grammar: attribute values -> natural English, and back.

Training captions use `TRAIN` phrasings; `NOVEL` phrasings (other synonyms and
templates) never appear in training and measure how far the text encoder carries
the generator. The parser understands both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edge_t2i.data.prompts import normalize_prompt
from edge_t2i.data.vocab import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES
from edge_t2i.errors import DataError

# canonical value -> (phrasings used in training, phrasings held out of training)
SYNONYMS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "shape": {
        "circle": (("circle", "disc", "round shape"), ("disk", "orb")),
        "square": (("square", "box", "four-sided square"), ("quadrate",)),
        "triangle": (("triangle", "three-sided shape", "trigon"), ("triangular shape",)),
        "star": (("star", "five-pointed star", "starlet"), ("pentagram star",)),
        "hexagon": (("hexagon", "six-sided shape", "hex"), ("hexagonal shape",)),
        "cross": (("cross", "plus sign", "plus"), ("plus-shaped cross",)),
    },
    "color": {
        "red": (("red", "crimson", "scarlet"), ("ruby",)),
        "orange": (("orange", "tangerine", "amber"), ("apricot",)),
        "yellow": (("yellow", "golden", "lemon"), ("canary",)),
        "green": (("green", "emerald", "grass-green"), ("jade",)),
        "cyan": (("cyan", "turquoise", "aqua"), ("teal",)),
        "blue": (("blue", "azure", "cobalt"), ("navy",)),
        "purple": (("purple", "violet", "lilac"), ("mauve",)),
        "pink": (("pink", "rose", "hot pink"), ("fuchsia",)),
    },
    "size": {
        "small": (("small", "little", "tiny"), ("miniature",)),
        "large": (("large", "big", "huge"), ("giant",)),
    },
    "position": {
        "top-left": (("top-left", "upper left", "top left corner"), ("northwest",)),
        "top": (("top", "top middle", "upper middle"), ("north",)),
        "top-right": (("top-right", "upper right", "top right corner"), ("northeast",)),
        "left": (("left", "middle left", "left side"), ("west",)),
        "center": (("center", "middle", "centre"), ("dead center",)),
        "right": (("right", "middle right", "right side"), ("east",)),
        "bottom-left": (("bottom-left", "lower left", "bottom left corner"), ("southwest",)),
        "bottom": (("bottom", "bottom middle", "lower middle"), ("south",)),
        "bottom-right": (("bottom-right", "lower right", "bottom right corner"), ("southeast",)),
    },
    "background": {
        "black": (("black", "dark"), ("pitch-black",)),
        "white": (("white", "bright white"), ("snow-white",)),
        "gray": (("gray", "grey"), ("slate",)),
    },
}

# {size} {color} {shape} {where} {bg}: where = "in the top-left" etc.
TEMPLATES_TRAIN = (
    "a {size} {color} {shape} {where}",
    "a {size} {color} {shape} {where}{bg}",
    "{where_cap}: a {size} {color} {shape}",
    "there is a {size} {color} {shape} {where}",
    "a {color} {shape}, {size}, {where}",
    "{size} {color} {shape} {where}{bg}",
)
TEMPLATES_NOVEL = (
    "one {size} {shape} colored {color}, {where}",
    "picture of a {shape} ({color}, {size}) {where}{bg}",
)
WHERE_TRAIN = ("in the {pos}", "at the {pos}", "{pos}")
WHERE_NOVEL = ("located at {pos}",)
BG_TRAIN = (" on a {bg} background", " against {bg}")
BG_NOVEL = (" over a {bg} backdrop",)

ORDER = {"shape": SHAPES, "color": COLORS, "size": SIZES, "position": POSITIONS, "background": BACKGROUNDS}


@dataclass(frozen=True)
class Caption:
    """Attributes parsed from a caption; None where the caption does not say."""

    shape: str | None
    color: str | None
    size: str | None
    position: str | None
    background: str | None = None


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def make_caption(
    rng: np.random.Generator,
    shape: str,
    color: str,
    size: str,
    position: str,
    background: str,
    novel: bool = False,
) -> str:
    """A random (but seed-determined) English caption for one object."""
    k = 1 if novel else 0
    words = {
        name: _pick(rng, SYNONYMS[name][value][k] or SYNONYMS[name][value][0])
        for name, value in (("shape", shape), ("color", color), ("size", size), ("position", position))
    }
    where = _pick(rng, WHERE_NOVEL if novel else WHERE_TRAIN).format(pos=words["position"])
    bg_word = _pick(rng, SYNONYMS["background"][background][k])
    bg = _pick(rng, BG_NOVEL if novel else BG_TRAIN).format(bg=bg_word)
    template = _pick(rng, TEMPLATES_NOVEL if novel else TEMPLATES_TRAIN)
    text = template.format(
        size=words["size"], color=words["color"], shape=words["shape"],
        where=where, where_cap=where[0].upper() + where[1:], bg=bg,
    )
    return re.sub(r"\s+", " ", text).strip()


def _phrase_table() -> dict[str, list[tuple[str, str]]]:
    """attribute -> [(phrase, canonical)], longest phrase first so 'top left' beats 'left'."""
    table: dict[str, list[tuple[str, str]]] = {}
    for attr, values in SYNONYMS.items():
        rows = [(p, canon) for canon, (train, novel) in values.items() for p in train + novel]
        rows += [(canon.replace("-", " "), canon) for canon in values]
        table[attr] = sorted(set(rows), key=lambda r: -len(r[0]))
    return table


_PHRASES = _phrase_table()
# Words that would otherwise be read as a position or background inside another phrase.
_BG_CUES = ("background", "backdrop", "against")


def normalize_text(text: str) -> str:
    """The parser's tokens: `normalize_prompt`, then hyphens and punctuation to spaces."""
    text = re.sub(r"[^a-z0-9 ]+", " ", normalize_prompt(text).replace("-", " "))
    return re.sub(r"\s+", " ", text).strip()


def parse_caption(text: str) -> Caption:
    """Read the attributes of the (first) object from a caption in the dataset grammar."""
    if not isinstance(text, str):
        raise DataError(f"caption must be a string, got {type(text).__name__}")
    s = f" {normalize_text(text)} "
    found: dict[str, str | None] = {}
    # Background first, so 'on a dark background' does not feed the color parser.
    bg_match = re.search(r" (?:on a |against |over a )([a-z ]+?)(?: background| backdrop|$| )", s)
    found["background"] = None
    if bg_match and any(cue in s for cue in _BG_CUES):
        for phrase, canon in _PHRASES["background"]:
            needle = f" {normalize_text(phrase)} "
            if needle in f" {bg_match.group(1)} ":
                found["background"] = canon
                s = s.replace(bg_match.group(0), " ", 1)
                break
    for attr in ("shape", "color", "size", "position"):
        found[attr] = None
        for phrase, canon in _PHRASES[attr]:
            needle = f" {normalize_text(phrase)} "
            if needle in s:
                found[attr] = canon
                s = s.replace(needle, " ", 1)
                break
    return Caption(**found)  # type: ignore[arg-type]
