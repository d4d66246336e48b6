"""Prompt text: the one normalisation rule, and prompt files (one prompt a line).

`normalize_prompt` is the key under which a prompt is looked up in a pack's bank,
compared between the calibration and evaluation sets, and de-duplicated in prompt
files; the caption parser builds on it. Keep every comparison of prompts on it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edge_t2i.errors import DataError, InputError

MAX_PROMPT_CHARS = 1000


def normalize_prompt(text: str) -> str:
    """The comparison key of a prompt: lower case, runs of whitespace collapsed to one space, trimmed.

    Raises: InputError if `text` is not a str."""
    if not isinstance(text, str):
        raise InputError(f"a prompt must be a string, got {type(text).__name__}")
    return re.sub(r"\s+", " ", text).strip().lower()


def read_prompts(path: str | os.PathLike[str], allow_duplicates: bool = False) -> list[str]:
    """Prompts of a UTF-8 text file, one a line (blank lines and '#' comments skipped), stripped.

    Raises: DataError if the file is missing, not UTF-8, empty, holds a prompt over
    MAX_PROMPT_CHARS characters, or (unless `allow_duplicates`) repeats a prompt
    (compared by `normalize_prompt`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompt file {path} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"prompt file {path} is not UTF-8 text (byte {exc.start})") from exc
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise DataError(f"prompt file {path} holds no prompts")
    too_long = [i for i, p in enumerate(prompts) if len(p) > MAX_PROMPT_CHARS]
    if too_long:
        raise DataError(f"prompt file {path}: prompt {too_long[0] + 1} is longer than {MAX_PROMPT_CHARS} characters")
    if not allow_duplicates:
        seen: dict[str, int] = {}
        for i, p in enumerate(prompts):
            key = normalize_prompt(p)
            if key in seen:
                raise DataError(f"prompt file {path}: prompt {i + 1} repeats prompt {seen[key] + 1} ({p!r})")
            seen[key] = i
    return prompts
