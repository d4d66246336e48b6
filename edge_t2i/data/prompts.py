"""Prompt text: the one normalisation rule, and prompt files (one prompt a line).

`normalize_prompt` is the key under which a prompt is looked up in a pack's bank,
compared between the calibration and evaluation sets, and de-duplicated in prompt
files; the caption parser builds on it. Keep every comparison of prompts on it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from edge_t2i.errors import DataError, InputError

MAX_PROMPT_CHARS = 1000  # every entry point: prompt files, the API (check_prompt), the CLI, the web page
MAX_READ_CHARS = 6 * MAX_PROMPT_CHARS  # a prompt as read (data/spelling.py): 1000 typed + 64 lexicon phrases of 64
MAX_PROMPT_WORDS = 64    # bounds the phrase reader's windows: at most 64 * 4 - 6 = 250 encoded per prompt
# zero width space / non-joiner / joiner, word joiner, byte-order mark (zero width no-break space)
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def normalize_prompt(text: str) -> str:
    """The comparison key of a prompt: Unicode NFKC (so decomposed "café" equals composed, full-width
    letters equal ASCII), zero-width characters and byte-order marks removed, case folded
    (`str.casefold`: "GROSS" equals "groß"), runs of whitespace collapsed to one space, trimmed.

    Raises: InputError if `text` is not a str."""
    if not isinstance(text, str):
        raise InputError(f"a prompt must be a string, got {type(text).__name__}")
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return re.sub(r"\s+", " ", text.casefold()).strip()


def check_prompt(text: object, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """`text` if it is a prompt the runtime takes: a str of at most `max_chars` characters and
    MAX_PROMPT_WORDS words (the work of encoding it is bounded). Raises InputError (one line) otherwise.
    `max_chars`: MAX_READ_CHARS for a prompt as read (data/spelling.py: a corrected word may be longer)."""
    if not isinstance(text, str):
        raise InputError(f"a prompt must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise InputError(f"a prompt is at most {max_chars} characters, got {len(text)}: "
                         f"{text[:40]!r}...")
    words = len(prompt_words(text))  # as the phrase reader splits them (NFKC can make one character many words)
    if words > MAX_PROMPT_WORDS:
        raise InputError(f"a prompt is at most {MAX_PROMPT_WORDS} words, got {words}: {text[:40]!r}...")
    return text


def read_prompts(path: str | os.PathLike[str], allow_duplicates: bool = False) -> list[str]:
    """Prompts of a UTF-8 text file (a byte-order mark and CRLF line ends accepted), one a line
    (blank lines and '#' comments skipped), stripped of surrounding whitespace and invisible characters.

    Raises: DataError if the file is missing, not UTF-8, empty, holds a prompt over
    MAX_PROMPT_CHARS characters, or (unless `allow_duplicates`) repeats a prompt
    (compared by `normalize_prompt`)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"prompt file {path} not found")
    if not path.is_file():
        raise DataError(f"prompt file {path} is not a regular file (a folder, device or pipe)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"prompt file {path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise DataError(f"prompt file {path} is unreadable ({exc.strerror})") from exc
    lines = (_INVISIBLE.sub("", line).strip() for line in text.splitlines())
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise DataError(f"prompt file {path} holds no prompts")
    for i, p in enumerate(prompts):
        try:
            check_prompt(p)
        except InputError as exc:
            raise DataError(f"prompt file {path}: prompt {i + 1}: {exc}") from None
    if not allow_duplicates:
        seen: dict[str, int] = {}
        for i, p in enumerate(prompts):
            key = normalize_prompt(p)
            if key in seen:
                raise DataError(f"prompt file {path}: prompt {i + 1} repeats prompt {seen[key] + 1} ({p!r})")
            seen[key] = i
    return prompts


def prompt_words(text: str) -> list[str]:
    """The words of a prompt as the phrase reader reads them: `normalize_prompt`, then characters other than a-z,
    0-9, apostrophes and hyphens split words."""
    return re.sub(r"[^a-z0-9'\-]+", " ", normalize_prompt(text)).split()


def phrase_windows(text: str, max_words: int) -> list[str]:
    """Every run of 1..`max_words` consecutive words of `text` (after `normalize_prompt`: NFKC, zero-width
    characters removed, case folded; then characters other than a-z, 0-9, apostrophes and hyphens split
    words), shortest first; [""] for a text with no words. Raises InputError if `text` is not a str.
    The windows a phrase reader reads (runtime/reader.py; docs/pack-spec.md spells the same rule)."""
    words = prompt_words(text)
    out = [" ".join(words[i:i + n]) for n in range(1, max_words + 1) for i in range(len(words) - n + 1)]
    return out or [""]


def window_bags(texts: list[str] | tuple[str, ...], max_words: int) -> tuple[list[str], list[list[int]]]:
    """(the distinct windows of all `texts`, sorted; per text, the indices of its windows in that list):
    what a phrase reader's caller encodes once (one batch, no window twice) and then reads per text."""
    windows = [phrase_windows(t, max_words) for t in texts]
    unique = sorted({w for ws in windows for w in ws})
    index = {w: i for i, w in enumerate(unique)}
    return unique, [[index[w] for w in ws] for ws in windows]
