"""`edge-t2i`: subcommands that parse arguments and call typed functions, one module per stage.

User errors (EdgeT2IError) print as one line and exit 2; `--debug` shows the traceback.
Library code logs (logger "edge_t2i"); this module decides what a person sees.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from edge_t2i.cli import bench, convert, data, eval, runtime, train
from edge_t2i.cli.common import EXIT_USER_ERROR, parse_seeds
from edge_t2i.errors import EdgeT2IError

STAGES = (data, eval, train, convert, runtime, bench)  # in pipeline order: their commands, in --help order
__all__ = ["build_parser", "main", "parse_seeds"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-t2i",
        description="Text-to-image GANs for real-time programs: data -> train -> convert -> pack -> runtime.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is chosen and why")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for stage in STAGES:
        stage.register(sub)
    return parser


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest swaps it between tests)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging(verbose: bool) -> None:
    """The package's log lines (stage progress, choices) on stderr: plain at INFO, named at DEBUG."""
    logger = logging.getLogger("edge_t2i")
    for handler in [h for h in logger.handlers if isinstance(h, _CurrentStderr)]:
        logger.removeHandler(handler)
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s" if verbose else "%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    configure_logging(a.verbose)
    try:
        a.func(a)
    except EdgeT2IError as exc:
        if a.debug:
            raise
        print(f"edge-t2i: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("edge-t2i: interrupted (earlier artifacts are intact)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
