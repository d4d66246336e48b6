"""What the subcommands share: seed ranges, prompt arguments, the one-line error convention."""

from __future__ import annotations

import argparse
import re

from edge_t2i.errors import InputError

EXIT_USER_ERROR = 2
MAX_SEEDS = 4096


def parse_seeds(spec: str) -> list[int]:
    """'0-7' or '1,5,9' or '3' -> list of non-negative seeds (1 to MAX_SEEDS of them).

    Raises: InputError for anything else."""
    seeds: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise InputError(f"bad seeds '{spec}': use e.g. 0-7 or 1,5,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds.extend(range(lo, hi + 1))
    if not seeds or len(seeds) > MAX_SEEDS:
        raise InputError(f"bad seeds '{spec}': give between 1 and {MAX_SEEDS} seeds")
    return seeds


def add_prompt_args(p: argparse.ArgumentParser) -> None:
    """--prompt/--seeds (a grid of one prompt) or --prompts-file/--seed-offset (an imagefolder), and --out."""
    p.add_argument("--prompt", help="one prompt; with --seeds, a grid of variations")
    p.add_argument("--seeds", default="0-7", help="seeds for --prompt, e.g. 0-15 or 1,5,9 (default 0-7)")
    p.add_argument("--prompts-file", help="one prompt a line: writes one PNG per line + metadata.jsonl")
    p.add_argument("--seed-offset", type=int, default=0, help="seed of line i is offset + i (default 0)")
    p.add_argument("--out", required=True, help="grid PNG (--prompt) or folder (--prompts-file)")


def prompts_and_seeds(a: argparse.Namespace) -> tuple[list[str], list[int], bool]:
    """(prompts, seeds, as_folder): --prompt with --seeds makes a grid, --prompts-file one image per line."""
    from edge_t2i.data.prompts import read_prompts

    if bool(a.prompt) == bool(a.prompts_file):
        raise InputError("give exactly one of --prompt or --prompts-file")
    if a.prompt:
        seeds = parse_seeds(a.seeds)
        return [a.prompt] * len(seeds), seeds, False
    prompts = read_prompts(a.prompts_file, allow_duplicates=True)
    return prompts, [a.seed_offset + i for i in range(len(prompts))], True


def write_images(out: str, images, prompts: list[str], seeds: list[int], as_folder: bool):  # noqa: ANN001, ANN201
    """An imagefolder (one PNG per prompt) or a grid PNG of uint8 [N, H, W, 3] images; returns the path."""
    from edge_t2i.data.imagefolder import write_imagefolder
    from edge_t2i.imaging import save_grid

    return write_imagefolder(out, images, prompts, seeds) if as_folder else save_grid(out, images, 8)
