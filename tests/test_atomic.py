"""Durable output: no half-written files, no moment without a model folder, stale temporaries
cleaned, one file mode, and a pull index that concurrent writers never lose entries of."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from zoo_ensemble import atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "labels.nii.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["labels.nii.gz"]


def test_stale_temporaries_of_dead_processes_are_cleaned_on_the_next_write(tmp_path):
    target = tmp_path / "evaluation.json"
    dead = tmp_path / ".evaluation.json.tmp999999999.x1.json"
    live = tmp_path / f".evaluation.json.tmp{os.getppid()}.x2.json"
    other = tmp_path / ".other.json.tmp999999999.x3.json"
    for p in (dead, live, other):
        p.write_text("left over")
    folder = tmp_path / ".evaluation.json.tmp999999998.dir"
    folder.mkdir()
    atomic.write_text(target, "{}")
    assert not dead.exists() and not folder.exists()
    assert live.exists() and other.exists()  # a running writer's, and another target's
    assert target.read_text() == "{}"


def test_folder_swap_replaces_contents_without_a_gap(tmp_path):
    target = tmp_path / "heart-unet"
    target.mkdir()
    (target / "a.txt").write_text("old")
    new = atomic.temp_folder(target)
    (new / "b.txt").write_text("new")
    assert atomic._exchange(tmp_path / "x-missing", tmp_path / "y-missing") is False
    atomic.swap_in_folder(new, target)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heart-unet"]
    if hasattr(os, "O_DIRECTORY") and atomic.ctypes.util.find_library("c"):
        one, two = tmp_path / "one", tmp_path / "two"
        one.mkdir()
        two.mkdir()
        (one / "1").write_text("")
        assert atomic._exchange(one, two) and (two / "1").exists()  # the kernel's atomic exchange is used here


def test_model_folder_files_share_one_mode(trained_heart):
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in Path(trained_heart).iterdir()}
    assert len(set(modes.values())) == 1, modes


def _pull_many(args):
    home, start = args
    os.environ["ZOO_HOME"] = home
    from zoo_ensemble.zoo import hub

    for i in range(start, start + 10):
        card = SimpleNamespace(model_id=f"m-{i}")
        hub.record(hub.Downloaded(f"org/m-{i}", None, "c" * 40, Path(home) / f"f{i}"), card.model_id)


def test_concurrent_pulls_keep_every_index_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_pull_many, [(str(tmp_path), k * 10) for k in range(4)])
    from zoo_ensemble.zoo import hub

    index = hub.index()
    assert sorted(index) == sorted(f"org/m-{i}" for i in range(40))
    assert index["org/m-7"]["model_id"] == "m-7"
