"""One-letter typos in prompts, corrected against the words a pack knows.

A sentence encoder reads "yelloow" and "sqaure" as other words (all-MiniLM-L6-v2's WordPiece splits them into
pieces far from "yellow" and "square"), so a typo'd prompt draws the wrong colour or shape. Before a prompt that is
not in the bank is encoded, each word the bank's prompts never use is replaced by the one word of that vocabulary
that is a single edit away (Damerau: insert, delete, substitute a letter, or swap two neighbours; Norvig's
"How to Write a Spelling Corrector" generates the candidates), if exactly one is. Words of fewer than
MIN_LETTERS letters stay (too many neighbours: "al" -> "a"?), as do words with no or several such neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_t2i.data.prompts import prompt_words

MIN_LETTERS = 4
MAX_LETTERS = 24  # longer "words" (NFKC can make one character four letters) are no typos of a prompt's words
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(texts: Iterable[str], limit: int = 200_000) -> frozenset[str]:
    """The words (`prompt_words`) of the first `limit` texts: what a bank of prompts says."""
    words: set[str] = set()
    for i, text in enumerate(texts):
        if i >= limit:
            break
        words.update(prompt_words(text))
    return frozenset(words)


def one_edit(word: str) -> set[str]:
    """Every string one Damerau edit away from `word` (letters a-z)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in splits if b}
            | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
            | {a + c + b for a, b in splits for c in _LETTERS}) - {word}


@dataclass(frozen=True)
class Reading:
    """How a prompt is read before it is encoded: `text` (its words, typos corrected), `corrected` (typed word ->
    the vocabulary word used) and `unknown` (words in no bank prompt, left as typed)."""

    text: str
    corrected: dict[str, str] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()


def read(prompt: str, known: frozenset[str]) -> Reading:
    """`prompt`'s words with one-letter typos corrected against `known` (see the module docstring)."""
    out, corrected, unknown = [], {}, []
    for word in prompt_words(prompt):
        if word in known or not known:
            out.append(word)
            continue
        letters = word.replace("'", "").replace("-", "")
        fits = MIN_LETTERS <= len(letters) <= MAX_LETTERS and letters.isalpha()
        candidates = one_edit(word) & known if fits else set()
        if len(candidates) == 1:
            fix = candidates.pop()
            corrected[word] = fix
            out.append(fix)
        else:
            out.append(word)
            unknown.append(word)
    return Reading(" ".join(out), corrected, tuple(dict.fromkeys(unknown)))
