"""One-letter typos in prompts, corrected against the words a pack knows.

A sentence encoder reads "yelloow" and "sqaure" as other words (all-MiniLM-L6-v2's WordPiece splits them into
pieces far from "yellow" and "square"), so a typo'd prompt draws the wrong colour or shape. Before a prompt that is
not in the bank is encoded, each word the bank's prompts never use is replaced by the one word of that vocabulary
that is a single edit away (Damerau: insert, delete, substitute a letter, or swap two neighbours; Norvig's
"How to Write a Spelling Corrector" generates the candidates), if exactly one is. Words of fewer than
MIN_LETTERS letters stay (too many neighbours, and too many real words: "al" -> "a"?, "pin" -> "pink"?), as do
words with no or several such neighbours; but a 3-letter word that the text encoder's WordPiece vocabulary does
not hold as a whole word ("str", "pnk", "lft"; "pin", "let" and "ink" are whole words) is a typo too, where the
pack has the encoder. Letters are counted without apostrophes and hyphens ("top-lef" is corrected to
"top-left"); the edits insert and replace letters a-z only.

A pack's bank may carry a lexicon: descriptive words and phrases (up to MAX_LEXICON_WORDS words) and the bank words
they mean ("crimson" -> "red", "robin egg blue" -> "blue", "teeny" -> "small"; convert/lexicon.py builds one from
colour names and size words). Phrases of the lexicon are replaced first, from the left, the longest phrase at each
word; typos are then corrected against the bank's words. A phrase followed by a bank word that says the same
attribute as the phrase's meaning (two one-word meanings of the lexicon that no bank prompt says together, as "pink"
and "red") reads as that bank word: people name a colour by a thing and then say which of the colours they mean
("paprika red", "tahiti blue", "lemon yellow"), and the thing's own colour must not contradict it. A word with no
bank word one edit away may be a typo of a one-word lexicon entry ("humongus" -> "humongous" -> "large"), but a
lexicon of ~7,700 colour names holds "drab" and "pear", one edit from the real words "draw" and "near": so only a
word of at least LEXICON_MIN_LETTERS letters that the text encoder's WordPiece vocabulary does not hold as a whole
word (no real word it knows) is corrected against the lexicon, and only where the pack has the encoder; the entries
one edit away must all mean the same ("eensy" is one edit from both "teensy" and "weensy": small).
docs/pack-spec.md ("Prompts not in the bank") spells the rules for other implementations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from edge_t2i.data.prompts import prompt_words

MIN_LETTERS = 4  # the shortest typed word corrected (letters, ' and - not counted): "pin", "let", "tar" stay
MAX_LEXICON_WORDS = 3
LEXICON_MIN_LETTERS = 5  # the shortest typed word corrected against the lexicon (and only if no whole word)
MAX_LETTERS = 24  # longer "words" (NFKC can make one character four letters) are no typos of a prompt's words
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Alternatives:
    """Which bank words say the same attribute: {one-word meaning of a lexicon that bank prompts use: the indices of
    the prompts that use it} (`said`); two such words say one attribute when no prompt uses both. Memory is one
    index per meaning word a prompt uses (at most MAX_PROMPT_WORDS a prompt), whatever a pack's lexicon holds."""

    said: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def __call__(self, a: str, b: str) -> bool:
        """Whether `a` and `b` say one attribute: the same word, or two meaning words no bank prompt has together
        ("pink", "red"; not "small", "red")."""
        if a == b:
            return True
        if a not in self.said or b not in self.said:
            return False
        small, large = sorted((self.said[a], self.said[b]), key=len)
        return small.isdisjoint(large)


def alternatives(texts: Iterable[str], lexicon: Mapping[str, str], limit: int = 200_000) -> Alternatives:
    """The `Alternatives` of a bank (its first `limit` prompts, as `vocabulary`) and its lexicon."""
    meanings = {m for m in lexicon.values() if " " not in m}
    said: dict[str, set[int]] = {}
    for i, text in enumerate(texts):
        if i >= limit:
            break
        for word in set(prompt_words(text)) & meanings:
            said.setdefault(word, set()).add(i)
    return Alternatives({word: frozenset(rows) for word, rows in said.items()})


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
    """How a prompt is read before it is encoded: `text` (its words, typos corrected and lexicon phrases replaced),
    `corrected` (typed word or phrase -> the words used) and `unknown` (words in no bank prompt, left as typed)."""

    text: str
    corrected: dict[str, str] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()


def read(prompt: str, known: frozenset[str], lexicon: Mapping[str, str] | None = None,
         whole_words: frozenset[str] | None = None, same: Alternatives | None = None) -> Reading:
    """`prompt`'s words with `lexicon` phrases replaced and one-letter typos corrected against `known` (see the
    module docstring). `lexicon`: {phrase of 1..MAX_LEXICON_WORDS prompt words: the words it means}.
    `whole_words`: the text encoder's whole-word tokens; given, 3-letter words not among them are corrected too.
    `same`: the bank's `alternatives`; given, a phrase followed by a bank word of its meaning's attribute reads as
    that word."""
    lexicon = lexicon or {}
    words = prompt_words(prompt)
    out: list[str] = []
    corrected: dict[str, str] = {}
    unknown: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_LEXICON_WORDS, len(words) - i), 0, -1):
            typed = " ".join(words[i:i + n])
            if typed in lexicon and not (n == 1 and typed in known):
                meaning = lexicon[typed]
                said = words[i + n] if i + n < len(words) else ""
                if same is not None and said in known and same(meaning, said):  # "paprika red": red
                    typed, meaning, n = f"{typed} {said}", said, n + 1
                corrected[typed] = meaning
                out.append(meaning)
                i += n
                break
        else:
            out.append(_word(words[i], known, corrected, unknown, whole_words, lexicon))
            i += 1
    return Reading(" ".join(out), corrected, tuple(dict.fromkeys(unknown)))


def _word(word: str, known: frozenset[str], corrected: dict[str, str], unknown: list[str],
          whole_words: frozenset[str] | None, lexicon: Mapping[str, str] | None = None) -> str:
    """One word as read: itself if known, else its one correction against the bank's words, else (no bank word
    one edit away; a long word that is no whole word of the encoder) the one meaning of the lexicon's one-word
    entries one edit away, else itself (unknown)."""
    if word in known or not known:
        return word
    letters = word.replace("'", "").replace("-", "")
    short = len(letters) == MIN_LETTERS - 1 and whole_words is not None and word not in whole_words
    fits = (MIN_LETTERS <= len(letters) <= MAX_LETTERS or short) and letters.isascii() and letters.isalpha()
    edits = one_edit(word) if fits else set()
    candidates = edits & known
    if len(candidates) == 1:
        corrected[word] = candidates.pop()
        return corrected[word]
    if not candidates and lexicon and whole_words is not None and word not in whole_words \
            and len(letters) >= LEXICON_MIN_LETTERS:
        meanings = {lexicon[e] for e in edits if e in lexicon and " " not in e}
        if len(meanings) == 1:  # one entry, or several that mean the same ("eensy": "teensy", "weensy")
            corrected[word] = meanings.pop()
            return corrected[word]
    unknown.append(word)
    return word
