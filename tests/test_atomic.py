"""Durable output: no half-written files, no moment without a model folder, stale temporaries
cleaned, one file mode, and a pull index that concurrent writers never lose entries of."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from hostile_runner import file_size_limit
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


def test_a_write_past_the_disk_is_one_error_naming_the_file_and_leaves_the_old_one(tmp_path):
    from zoo_ensemble.errors import OutputWriteError

    target = tmp_path / "report.json"
    target.write_text("earlier")
    with file_size_limit(1000), pytest.raises(OutputWriteError, match=r"report\.json: could not be written \(File too large\)"):
        atomic.write_text(target, "x" * 5000)
    assert target.read_text() == "earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_model_folder_that_cannot_be_written_leaves_nothing(tmp_path):
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    import torch

    from zoo_ensemble.errors import OutputWriteError

    with file_size_limit(1000), pytest.raises(OutputWriteError, match=r"model: could not be written \(File too large\)"):
        with atomic.atomic_folder(tmp_path / "model", errors=(SafetensorError,)) as tmp:
            save_file({"w": torch.zeros(4096)}, str(tmp / "model.safetensors"))
    assert list(tmp_path.iterdir()) == []


def test_causes_are_read_from_os_errors_and_from_rust_io_errors():
    assert atomic.cause(OSError(28, "No space left on device")) == "No space left on device"
    assert atomic.cause(Exception("Error while serializing: I/O error: File too large (os error 27)")) == os.strerror(27)
    assert atomic.cause(RuntimeError("Exception thrown in ITK\nline two\n[nrrd] failed to write")) == "[nrrd] failed to write"


def test_a_short_write_is_named_by_what_extending_the_file_gives(tmp_path):
    short = tmp_path / "short.nii"
    short.write_bytes(b"x" * 100)
    with file_size_limit(200):
        assert atomic.short_write_cause(short) == "File too large"
    assert atomic.short_write_cause(short, "stopped") == "stopped"


def test_what_c_code_prints_is_passed_on_or_held_back(capfd):
    from zoo_ensemble.native_stderr import held_stderr

    with held_stderr() as held:
        os.write(2, b"** a line from C\n")
    assert capfd.readouterr().err == "** a line from C\n" and held.text == "** a line from C\n"
    with pytest.raises(ValueError), held_stderr() as held:
        os.write(2, b"** ERROR: NWAD: wrote only 0 of 10 bytes\n")
        raise ValueError
    assert capfd.readouterr().err == "" and "NWAD" in held.text
