"""The pygame example runs headless for a few hundred frames and no frame waits for generation."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edge_t2i.runtime import AsyncPipeline

ROOT = Path(__file__).resolve().parents[1]


def run_headless(pack: Path, frames: int, tmp_path: Path) -> dict:
    """examples/game_loop.py on `pack` for `frames` frames with SDL's dummy drivers; its statistics."""
    pytest.importorskip("pygame")
    stats_file = tmp_path / "stats.json"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "game_loop.py"), str(pack), "--frames", str(frames),
                           "--json", str(stats_file)], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(stats_file.read_text())


@pytest.mark.slow
def test_game_loop_headless(pack_dir, tmp_path):
    stats = run_headless(pack_dir, 300, tmp_path)
    assert stats["frames"] == 300 and stats["backend"] in ("onnxruntime", "openvino")  # whichever measured faster
    assert stats["images_generated"] > 0
    # every frame submitted one request: generated, dropped for a newer one, or (at most two) still in flight
    assert 300 - 2 <= stats["images_generated"] + stats["requests_dropped"] <= 300, stats


class BlockedPipeline:
    """A pipeline whose generate() waits until the test releases it: a generation slower than any frame."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[list[int]] = []

    def generate(self, prompts, seeds=None):
        self.calls.append(list(seeds))
        self.started.set()
        self.release.wait(30)
        return np.full((1, 2, 2, 3), seeds[0], np.int32)


def test_frames_submit_while_a_generation_is_still_running():
    """What the game loop relies on: submit() returns while the worker is stuck in a generation, and
    the newest request is the one made next (latest wins), so no frame ever waits for the generator."""
    pipe = BlockedPipeline()
    with AsyncPipeline(pipe, latest_wins=True) as ag:
        first = ag.submit("p", seeds=[0])
        assert pipe.started.wait(30)
        handles = []
        frames = threading.Thread(target=lambda: handles.extend(ag.submit("p", seeds=[i]) for i in range(1, 300)))
        frames.start()
        frames.join(30)
        assert not frames.is_alive() and len(handles) == 299  # all 299 frames submitted while blocked
        assert pipe.calls == [[0]] and not first.done() and ag.latest() is None
        assert all(h.dropped for h in handles[:-1]) and ag.dropped == 298
        pipe.release.set()
        assert first.result(timeout=30)[0, 0, 0, 0] == 0
        assert handles[-1].result(timeout=30)[0, 0, 0, 0] == 299
        assert pipe.calls == [[0], [299]] and ag.latest()[0, 0, 0, 0] == 299
