"""AsyncPipeline: generation off the game thread, so no frame waits for it.

`submit()` never blocks: requests go to a bounded queue served by one worker
thread. With `latest_wins`, a new request replaces queued ones the game no longer
wants. Results are double-buffered: `latest()` returns the newest finished image
while the next one is being made.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_t2i.errors import InputError
from edge_t2i.runtime.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class Handle:
    """One request. `done()` never blocks; `result()` waits (off the frame path)."""

    prompts: object
    seeds: Sequence[int] | int | None
    submitted: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    dropped: bool = False
    _event: threading.Event = field(default_factory=threading.Event, repr=False)
    _image: np.ndarray | None = field(default=None, repr=False)
    _error: BaseException | None = field(default=None, repr=False)
    _why_dropped: str = field(default="", repr=False)

    def done(self) -> bool:
        return self._event.is_set()

    def result(self, timeout: float | None = None) -> np.ndarray:
        if not self._event.wait(timeout):
            raise TimeoutError("generation not finished")
        if self._error is not None:
            raise self._error
        if self._image is None:
            raise InputError(f"request was dropped: {self._why_dropped or 'a newer one replaced it (latest_wins)'}")
        return self._image

    def _drop(self, why: str) -> None:
        self.dropped = True
        self._why_dropped = why
        self._event.set()

    @property
    def latency_s(self) -> float | None:
        return None if self.finished is None else self.finished - self.submitted


class AsyncPipeline:
    """Runs `pipeline.generate` on one worker thread behind a bounded queue (what Unity Sentis and
    Unreal NNE do for game loops: inference off the game thread, results read when ready).

    `max_queue` (>= 1): queued requests kept; `latest_wins`: a new request drops every queued
    one (a game wants its newest prompt, not a backlog); `generate_kwargs` go to every
    `Pipeline.generate` call (e.g. `bgr=True`). Errors of a request reach its caller through
    `Handle.result()`, are logged, and the newest stays in `last_error` (`latest()` keeps showing
    the last good image). Use as a context manager, or call `close()`.
    Raises: InputError if `max_queue` < 1."""

    def __init__(self, pipeline: Pipeline, max_queue: int = 2, latest_wins: bool = True, **generate_kwargs: object):
        if not callable(getattr(pipeline, "generate", None)):
            raise InputError(f"AsyncPipeline runs a Pipeline (edge_t2i.load(pack)), got {type(pipeline).__name__}")
        if max_queue < 1:
            raise InputError(f"max_queue must be at least 1, got {max_queue}")
        self.pipeline = pipeline
        self.max_queue = max_queue
        self.latest_wins = latest_wins
        self.generate_kwargs = generate_kwargs
        self._queue: collections.deque[Handle] = collections.deque()
        self._cv = threading.Condition()
        self._front: Handle | None = None  # newest finished request (double buffer: front/back)
        self._closed = False
        self.latencies: list[float] = []
        self.dropped = 0
        self.last_error: BaseException | None = None  # a game loop that never calls result() can poll this
        self._worker = threading.Thread(target=self._run, name="edge-t2i-generate", daemon=True)
        self._worker.start()

    def submit(self, prompts: object = None, seeds: Sequence[int] | int | None = None) -> Handle:
        """Queue a request and return at once. A full queue drops the oldest queued request. `prompts` as
        `Pipeline.generate` takes them; none for an unconditional pack (`submit(seeds=[7])`), and a prompt for one
        is refused here, not later in the worker.
        Raises: InputError (closed; a prompt for an unconditional pack, or none for a conditional one)."""
        if getattr(self.pipeline, "conditional", True) != (prompts is not None):  # any object with generate()
            raise InputError("this pack's generator is unconditional: submit(seeds=...) without prompts"
                             if prompts is not None else "this pack draws what a prompt says: pass prompts")
        handle = Handle(prompts, seeds)
        with self._cv:
            if self._closed:
                raise InputError("AsyncPipeline is closed")
            while self._queue and (self.latest_wins or len(self._queue) >= self.max_queue):
                self._queue.popleft()._drop("a newer one replaced it (latest_wins)"
                                            if self.latest_wins else "the queue was full")
                self.dropped += 1
            self._queue.append(handle)
            self._cv.notify()
        return handle

    def latest(self) -> np.ndarray | None:
        """The newest finished image batch (front buffer), or None before the first one."""
        front = self._front
        return None if front is None else front._image

    def pending(self) -> int:
        with self._cv:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed and not self._queue:
                    return
                handle = self._queue.popleft()
            try:
                handle._image = self.pipeline.generate(handle.prompts, seeds=handle.seeds, **self.generate_kwargs)  # type: ignore[arg-type]
            except BaseException as exc:  # delivered to the caller through result(), and kept in last_error
                handle._error = exc
                self.last_error = exc
                log.warning("generation failed: %s", exc)
            handle.finished = time.perf_counter()
            if handle._error is None:
                self.latencies.append(handle.finished - handle.submitted)
                self._front = handle  # swap: the finished back buffer becomes the front
            handle._event.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop: queued requests are dropped at once (their `result()` raises InputError instead of
        waiting forever), the one being generated finishes, and the worker ends (waited for up to
        `timeout` seconds). Further `submit()` calls raise InputError. Safe to call twice."""
        with self._cv:
            self._closed = True
            while self._queue:
                self._queue.popleft()._drop("the AsyncPipeline was closed before it ran")
                self.dropped += 1
            self._cv.notify_all()
        self._worker.join(timeout)

    def __enter__(self) -> AsyncPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
