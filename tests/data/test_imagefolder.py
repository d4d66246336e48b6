"""Imagefolders a user hands `edge-t2i eval`: crafted metadata is one error line, never a traceback or a crash."""

from __future__ import annotations

import pytest

from edge_t2i.cli import main


@pytest.mark.parametrize("line", ['{"file_name": "a.png", "text": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                  '{"file_name": "a.png", "text": "x", "n": ' + "9" * 5000 + "}",
                                  '{"file_name": "\\ud800.png", "text": "x"}', '{"file_name": "a.png\\u0000x", "text": "x"}'])
def test_eval_refuses_crafted_metadata_in_one_line(tmp_path, capsys, line):
    """Found by a breaker: a RecursionError and a ValueError traceback, an OpenCV crash on a lone surrogate."""
    (tmp_path / "metadata.jsonl").write_text(line + "\n")
    assert main(["eval", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-t2i: error:"), err
