"""`edge-t2i`: subcommands that parse arguments and call typed functions, one module per stage.

User errors (EdgeT2IError) print as one line and exit 2; `--debug` shows the traceback.
Library code logs (logger "edge_t2i"); this module decides what a person sees.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from edge_t2i.cli import bench, convert, data, eval, runtime, train
from edge_t2i.cli.common import EXIT_USER_ERROR, Parser, describe_os_error, parse_seeds
from edge_t2i.errors import EdgeT2IError, printable

STAGES = (data, eval, train, convert, runtime, bench)  # in pipeline order: their commands, in --help order
__all__ = ["build_parser", "main", "parse_seeds"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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


class Terminated(KeyboardInterrupt):
    """SIGTERM (docker stop, systemd, `timeout`) or SIGHUP, unwound like Ctrl-C: temporaries are removed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise Terminated in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    signals = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush of a closed pipe raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 user or filesystem error, 128+N on signal N)."""
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line printed): a code, not an exception
        return int(exc.code or 0)
    configure_logging(a.verbose)
    try:
        with termination_as_interrupt():
            a.func(a)
    except BrokenPipeError:  # `edge-t2i ... | head`: the reader left; say nothing more
        _quiet_stdout()
        return 128 + 13  # as if killed by SIGPIPE, as other command-line tools end
    except (EdgeT2IError, OSError) as exc:
        if a.debug:
            raise
        # one line a person can read, whatever a library or a crafted file put in it (escapes, newlines, length)
        message = printable(" ".join((describe_os_error(exc) if isinstance(exc, OSError) else str(exc)).split()))
        print(f"edge-t2i: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:  # an allocation the command could not make (a huge pack file, a batch past the RAM)
        if a.debug:
            raise
        print("edge-t2i: error: out of memory: the command needed more memory than this machine (or its limit) "
              "allows; try a smaller --batch, or see README 'Safety' for the runtime's memory bounds", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        print(f"edge-t2i: {signal.Signals(signum).name}: stopped (earlier artifacts are intact)", file=sys.stderr)
        return 128 + int(signum)
    return 0


if __name__ == "__main__":
    sys.exit(main())
