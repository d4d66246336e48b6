"""A runtime-only install (the core: numpy, onnxruntime, opencv-python-headless; no torch, onnx or OpenVINO) runs
the runtime's commands: `--help`, `info`, `generate`, `tune`, `bench` (without the torch peers) and `load`.

CI installs the package without extras into a second virtual environment (EDGE_T2I_RUNTIME_PYTHON points at
its python); without it the test is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import BANK_PROMPTS

PYTHON = os.environ.get("EDGE_T2I_RUNTIME_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="set EDGE_T2I_RUNTIME_PYTHON to a python with the core install")


def run(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGE_T2I_CACHE": str(tmp_path / "cache"), "PYTHONPATH": ""}
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_the_core_install_has_no_torch_onnx_or_openvino(tmp_path):
    proc = run("-c", "import importlib.util as u, json; print(json.dumps([u.find_spec(m) is not None for m in "
                     "('torch', 'onnx', 'openvino', 'edge_t2i')]))", tmp_path=tmp_path)
    assert json.loads(proc.stdout) == [False, False, False, True], proc.stderr


def test_runtime_commands_run_without_torch(pack_dir, tmp_path):
    cli = ("-m", "edge_t2i")
    for args in (["--help"], ["generate", "--help"], ["info", str(pack_dir)], ["tune", str(pack_dir)],
                 ["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--seeds", "0-3",
                  "--out", str(tmp_path / "g.png")],
                 ["bench", str(pack_dir), "--backends", "auto,onnxruntime-int8,raw", "--batch", "1",
                  "--seconds", "0.2", "--warmup", "1", "--json", str(tmp_path / "b.json")]):
        proc = run(*cli, *args, tmp_path=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
    assert (tmp_path / "g.png").stat().st_size > 100
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert {r["config"] for r in rows} >= {"auto", "onnxruntime-int8"}
    code = (f"import edge_t2i, sys; g = edge_t2i.load({str(pack_dir)!r}); "
            f"print(g.generate({BANK_PROMPTS[0]!r}, seeds=[1]).shape, 'torch' in sys.modules)")
    proc = run("-c", code, tmp_path=tmp_path)
    assert proc.stdout.split() == ["(1,", "32,", "32,", "3)", "False"], proc.stderr
