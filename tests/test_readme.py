"""Every command in README.md runs as written.

Each fenced ```bash block of the README is preceded by a marker line:
  <!-- readme: fast -->             run here, in CI (seconds to a minute or two)
  <!-- readme: slow, about N min --> too long for CI (a set-up, a long conversion): listed with its measured time
  <!-- readme: ci -->               the test command itself (`bash .ci/run`), which runs this test
A fast block runs with bash (`set -euo pipefail`) in a scratch folder that holds links to the repository's
folders (so `checkpoints/shapes64`, `examples/...` resolve and nothing is written into the repository), with the
test's Python environment first on PATH. Blocks share the scratch folder in README order, as a reader's would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
MARKER = re.compile(r"<!-- readme: (fast|ci|slow, about [0-9.]+ (?:s|min)) -->")
BLOCK = re.compile(r"(?:^(<!-- readme: [^>]*-->)\n)?```bash\n(.*?)```", re.S | re.M)
LINKED = ("checkpoints", "examples", "calib", "convert", "edge_t2i", "benchmarks", "docs", "pyproject.toml")


def blocks() -> list[tuple[str | None, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text(encoding="utf-8"))]


def test_every_bash_block_says_whether_ci_runs_it():
    found = blocks()
    assert found, "README.md has no ```bash blocks"
    for marker, code in found:
        assert marker is not None and MARKER.fullmatch(marker), f"unmarked README block:\n{code}"
    assert any(marker == "<!-- readme: ci -->" and code.strip() == "bash .ci/run" for marker, code in found)


@pytest.mark.slow
def test_the_fast_readme_commands_run_as_written(tmp_path):
    fast = [code for marker, code in blocks() if marker == "<!-- readme: fast -->"]
    assert fast, "no README block is marked fast"
    for name in LINKED:
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1"}
    for code in fast:
        proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + code], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"README block failed ({proc.returncode}):\n{code}\n{proc.stderr[-3000:]}"
