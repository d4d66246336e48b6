"""The declared minimum ONNX Runtime (pyproject: onnxruntime>=1.17) loads and runs every model convert writes.

CI makes a second virtual environment with exactly that version (EDGE_T2I_MIN_ORT_PYTHON points at
its python); without it the test is skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

PYTHON = os.environ.get("EDGE_T2I_MIN_ORT_PYTHON")
SCRIPT = """
import json, sys
import numpy as np
import onnxruntime as ort
out = {"version": ort.__version__}
feeds = dict(np.load(sys.argv[1]))
for path in sys.argv[2:]:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out[path] = sess.run(["image"], feeds)[0].tolist()
print(json.dumps(out))
"""


def declared_minimum() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'"onnxruntime>=([0-9.]+)"', text).group(1)


@pytest.mark.skipif(not PYTHON, reason="set EDGE_T2I_MIN_ORT_PYTHON to a python with the minimum onnxruntime")
def test_minimum_onnxruntime_runs_every_model_convert_writes(pack_dir, tmp_path):
    import onnxruntime as ort

    models = sorted(str(p) for p in Path(pack_dir).glob("generator.*.onnx"))
    assert {Path(m).name for m in models} >= {"generator.fp32.onnx", "generator.int8.onnx"}
    rng = np.random.default_rng(0)
    feeds = {"z": rng.standard_normal((2, 100), dtype=np.float32),
             "embedding": rng.standard_normal((2, 384), dtype=np.float32)}
    np.savez(tmp_path / "inputs.npz", **feeds)
    proc = subprocess.run([PYTHON, "-c", SCRIPT, str(tmp_path / "inputs.npz"), *models], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["version"].startswith(declared_minimum())
    for m in models:
        here = ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(["image"], feeds)[0]
        assert np.abs(np.array(result[m], np.float32) - here).max() < 1e-3, m
