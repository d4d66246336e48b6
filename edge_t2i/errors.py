"""One exception type per area, so the CLI can print user errors as one line.

Every error the package raises on purpose derives from `EdgeT2IError`; anything
else reaching the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations


class EdgeT2IError(Exception):
    """Base class of all errors meant for the user (printed as one line)."""


class DataError(EdgeT2IError):
    """A dataset, image folder, caption or prompt file is missing or malformed."""


class CheckpointError(EdgeT2IError):
    """A checkpoint is missing, corrupt, unsafe or for another architecture."""


class PackError(EdgeT2IError):
    """A pack (manifest, bank, model files) is missing, altered or malformed."""


class ConvertError(EdgeT2IError):
    """A conversion stage failed (export, calibration, quantization, gate, engine)."""


class BackendError(EdgeT2IError):
    """An inference backend cannot load or run here."""


class InputError(EdgeT2IError):
    """Inputs to `generate` are invalid (shape, NaN, batch size, unknown prompt)."""


class OutputError(EdgeT2IError):
    """An output location cannot or must not be written (not ours, overlaps an input, read-only)."""


class MissingExtraError(EdgeT2IError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, purpose: str):  # noqa: ANN201 - returns a module
    """Import `module` lazily, or raise MissingExtraError naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs '{module}', which is not installed: "
            f"pip install 'edge-t2i[{extra}]' ({exc})"
        ) from exc


def did_you_mean(name: str, choices: list[str] | tuple[str, ...], what: str) -> str:
    """A message for an unknown name: the closest valid one and the full list."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    hint = f" did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{name}';{hint} valid: {', '.join(choices)}"


def printable(text: str, limit: int = 1000) -> str:
    """`text` as one line a terminal shows as written: control characters (escape sequences, newlines, tabs),
    surrogates and other unprintable code points as backslash escapes, runs of spaces kept; cut to `limit`
    characters with its end kept. For anything a pack or a library put in a message."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
    return shown if len(shown) <= limit else shown[:limit - 100] + " ... " + shown[-95:]
