"""AsyncPipeline: errors reach the caller, the worker survives them, and close() leaves no handle unfinished."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge_t2i.errors import InputError
from edge_t2i.runtime import AsyncPipeline, load
from tests.conftest import BANK_PROMPTS


class HeldPipeline:
    """Any object with `generate` will do: this one blocks each call until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[object] = []

    def generate(self, prompts, seeds=None, **kwargs):  # noqa: ANN001, ANN201
        self.calls.append(prompts)
        self.started.set()
        assert self.release.wait(30), "the test never released the worker"
        return np.full((1, 2, 2, 3), len(self.calls), np.uint8)


@pytest.fixture(scope="module")
def gen(pack_dir):
    with load(pack_dir, precision="int8", threads=1) as g:
        yield g


def test_generate_errors_reach_result_and_the_worker_keeps_serving(gen):
    with AsyncPipeline(gen, latest_wins=False, max_queue=4, unknown="error") as ag:
        bad = ag.submit("a prompt that is in no bank at all", seeds=[0])
        good = ag.submit(BANK_PROMPTS[1], seeds=[7])
        with pytest.raises(InputError, match="not in the bank"):
            bad.result(timeout=30)
        assert bad.done() and not bad.dropped and bad.latency_s is not None
        assert np.array_equal(good.result(timeout=30), gen.generate(BANK_PROMPTS[1], seeds=[7]))
        later = ag.submit(BANK_PROMPTS[2], seeds=[1])  # after the error too
        assert np.array_equal(later.result(timeout=30), gen.generate(BANK_PROMPTS[2], seeds=[1]))
        assert len(ag.latencies) == 2  # failed requests count no latency
        assert np.array_equal(ag.latest(), later.result())


def test_result_raises_the_very_exception_generate_raised():
    class Boom(RuntimeError):
        pass

    class Failing:
        def generate(self, prompts, seeds=None, **kwargs):  # noqa: ANN001, ANN201
            if prompts == "boom":
                raise Boom("backend fell over")
            return np.zeros((1, 2, 2, 3), np.uint8)

    with AsyncPipeline(Failing(), latest_wins=False) as ag:
        h = ag.submit("boom")
        with pytest.raises(Boom, match="backend fell over"):
            h.result(timeout=30)
        assert ag.submit("fine").result(timeout=30).shape == (1, 2, 2, 3)
        assert ag.latest().shape == (1, 2, 2, 3)


def test_close_finishes_every_handle_queued_ones_dropped_running_one_completed():
    """close() with one request running and two queued: the queued ones are dropped at once (a closing game
    wants no backlog, and a result() without timeout must not hang), the running one completes, and close()
    returns only after the worker stopped using the pipeline."""
    p = HeldPipeline()
    ag = AsyncPipeline(p, latest_wins=False, max_queue=4)
    running = ag.submit("first")
    assert p.started.wait(30)            # the worker is inside generate("first")
    queued = [ag.submit("second"), ag.submit("third")]
    assert ag.pending() == 2
    closer = threading.Thread(target=ag.close, kwargs={"timeout": 30})
    closer.start()
    for h in queued:                     # finished by close() itself, while "first" is still held
        with pytest.raises(InputError, match="closed"):
            h.result(timeout=10)
        assert h.dropped
    assert not running.done()
    p.release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert running.done() and running.result().max() == 1
    assert p.calls == ["first"]          # the dropped requests never reached generate
    assert ag.pending() == 0 and ag.dropped == 2
    with pytest.raises(InputError, match="closed"):
        ag.submit("after close")


def test_latest_wins_drops_say_replaced_not_closed():
    p = HeldPipeline()
    with AsyncPipeline(p, latest_wins=True) as ag:
        ag.submit("first")
        assert p.started.wait(30)
        stale, newest = ag.submit("second"), ag.submit("third")
        with pytest.raises(InputError, match="replaced"):
            stale.result(timeout=10)
        p.release.set()
        assert newest.result(timeout=30).max() == 2 and p.calls == ["first", "third"]


def test_close_is_idempotent_and_context_manager_closes():
    p = HeldPipeline()
    p.release.set()
    with AsyncPipeline(p) as ag:
        assert ag.submit("x").result(timeout=30).shape == (1, 2, 2, 3)
    ag.close()
    with pytest.raises(InputError, match="closed"):
        ag.submit("y")
