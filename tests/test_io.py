"""Atomic writes: a failure at any point leaves the previous artifact."""

import os

import pytest

from edge_t2i import _io as atomic


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "f.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "pack"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic.atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert [p.name for p in tmp_path.iterdir()] == ["pack"]


def test_crash_between_the_two_renames_is_recovered(tmp_path):
    target = tmp_path / "pack"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    os.replace(target, tmp_path / f".pack.old-{os.getpid()}")  # as if killed right after moving it aside
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(target):
            raise RuntimeError("next write fails too")
    assert (target / "a").read_text() == "1"
