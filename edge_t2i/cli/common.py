"""What the subcommands share: seed ranges, prompt arguments, the one-line error convention."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from edge_t2i.errors import InputError

EXIT_USER_ERROR = 2
MAX_SEEDS = 4096
MAX_SEED = 2**64 - 1  # the pack spec's seeds are unsigned 64-bit (docs/pack-spec.md "noise")
MAX_THREADS = 256
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # what OpenCV encodes by the file name


class Parser(argparse.ArgumentParser):
    """argparse with the package's error convention: one line `edge-t2i: error: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"edge-t2i: error: {self.prog.split()[-1]}: {message} (see --help)\n")


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi] (nan and inf refused)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a finite number in [{lo:g}, {hi:g}], got {text}")
        return value
    parse.__name__ = "number"
    return parse


def threads_arg() -> Callable[[str], int]:
    """CPU threads: 0 (all cores) up to MAX_THREADS."""
    return int_in(0, MAX_THREADS)


def parse_seeds(spec: str) -> list[int]:
    """'0-7' or '1,5,9' or '3' -> list of non-negative seeds (1 to MAX_SEEDS of them), counted before
    any range is expanded, so '0-99999999999999' is refused at once.

    Raises: InputError for anything else."""
    ranges = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(\d{1,20})(?:-(\d{1,20}))?", part)
        if m is None:
            raise InputError(f"bad seeds '{spec}': use e.g. 0-7 or 1,5,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi > MAX_SEED:
            raise InputError(f"bad seeds '{spec}': seeds go up to {MAX_SEED} (2^64 - 1)")
        if hi < lo:
            raise InputError(f"bad seeds '{spec}': a range goes from low to high")
        ranges.append((lo, hi))
    if sum(hi - lo + 1 for lo, hi in ranges) > MAX_SEEDS:
        raise InputError(f"bad seeds '{spec}': give between 1 and {MAX_SEEDS} seeds")
    return [s for lo, hi in ranges for s in range(lo, hi + 1)]


def describe_os_error(exc: OSError) -> str:
    """One line for a filesystem fault: the path and the OS reason (e.g. 'No space left on device')."""
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason



def add_prompt_args(p: argparse.ArgumentParser) -> None:
    """--prompt/--seeds (a grid of one prompt) or --prompts-file/--seed-offset (an imagefolder), and --out."""
    p.add_argument("--prompt", help="one prompt; with --seeds, a grid of variations (none for an unconditional pack)")
    p.add_argument("--seeds", default="0-7", help="seeds for --prompt (or alone, for an unconditional pack), e.g. "
                                                  "0-15 or 1,5,9 (default 0-7)")
    p.add_argument("--prompts-file", help="one prompt a line: writes one PNG per line + metadata.jsonl")
    p.add_argument("--seed-offset", type=int_in(0, 2**62), default=0, help="seed of line i is offset + i (default 0)")
    p.add_argument("--out", required=True, help="grid PNG (--prompt) or folder (--prompts-file)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it is a folder this tool did not write (never an input)")


def prompts_and_seeds(a: argparse.Namespace, conditional: bool = True) -> tuple[list[str], list[int], bool]:
    """(prompts, seeds, as_folder): --prompt with --seeds makes a grid, --prompts-file one image per line; for an
    unconditional pack (`conditional` False) --seeds alone makes the grid (prompts: [])."""
    from edge_t2i.data.prompts import read_prompts

    if not conditional:
        if a.prompt is not None or a.prompts_file is not None:
            raise InputError("this pack's generator is unconditional (noise alone -> image): it takes no prompt; "
                             "give --seeds only")
        return [], parse_seeds(a.seeds), False

    if a.prompt is not None and not a.prompt.strip():
        raise InputError("--prompt is empty: give the text to draw")
    if (a.prompt is None) == (a.prompts_file is None):
        raise InputError("give exactly one of --prompt or --prompts-file")
    if a.prompt:
        seeds = parse_seeds(a.seeds)
        return [a.prompt] * len(seeds), seeds, False
    prompts = read_prompts(a.prompts_file, allow_duplicates=True)
    return prompts, [a.seed_offset + i for i in range(len(prompts))], True


def claim_image_output(a: argparse.Namespace, as_folder: bool, inputs: tuple = ()) -> None:
    """Check --out before any image is made: a grid file, or a folder this tool may (re)write."""
    from edge_t2i import _io
    from edge_t2i.data.imagefolder import is_our_generated_images

    inputs = (*inputs, *([a.prompts_file] if a.prompts_file else []))
    if as_folder:
        _io.claim_output_dir(a.out, "folder of generated images", is_our_generated_images, inputs, a.force)
    else:
        _io.claim_output_file(a.out, inputs)
        if Path(a.out).suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"--out {a.out}: a grid is an image; end the name with one of {', '.join(IMAGE_SUFFIXES)}")


def write_images(a: argparse.Namespace, images, prompts: list[str], seeds: list[int], as_folder: bool,  # noqa: ANN001
                 inputs: tuple = (), extra: list[dict] | None = None):  # noqa: ANN201
    """An imagefolder (one PNG per prompt) or a grid PNG of uint8 [N, H, W, 3] images; returns the path."""
    from edge_t2i.data.imagefolder import write_imagefolder
    from edge_t2i.imaging import save_grid

    if as_folder:
        inputs = (*inputs, *([a.prompts_file] if a.prompts_file else []))
        return write_imagefolder(a.out, images, prompts, seeds, force=a.force, inputs=inputs, extra=extra)
    return save_grid(a.out, images, 8)
