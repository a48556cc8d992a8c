"""Data-parallel training and cohort prediction under torchrun, two gloo processes on the CPU."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("data_parallel_worker.py")
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "ZOO_HOME": str(home), "OMP_NUM_THREADS": "1", "COLUMNS": "400", **extra}
    env.pop("ZOO_DEBUG", None)
    return env


def torchrun(args: list[str], home: Path, n: int = 2, **extra: str) -> subprocess.CompletedProcess:
    cmd = [TORCHRUN, "--nproc-per-node", str(n), "--standalone", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(home, **extra), timeout=180)


def alone(args: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(home), timeout=180)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _ours(stderr: str) -> list[str]:
    """Our error lines (torchrun adds its own report of a failed worker after them)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _same_run(a: Path, b: Path) -> None:
    ha, hb = json.loads((a / "history.json").read_text()), json.loads((b / "history.json").read_text())
    for ea, eb in zip(ha["history"], hb["history"], strict=True):
        assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=1e-9)
        assert ea["val_loss"] == pytest.approx(eb["val_loss"], rel=1e-9)
        assert ea["val_dice"] == pytest.approx(eb["val_dice"], abs=1e-9)
    wa, wb = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-8, atol=1e-9, msg=k)


@pytest.fixture(scope="module")
def one_process(cohort_a, tmp_path_factory):
    """Each kind's run by one process, trained once for the tests that compare against it."""
    runs = {}

    def run(kind: str) -> Path:
        if kind not in runs:
            out = tmp_path_factory.mktemp(f"one-{kind}")
            _ok(alone([str(WORKER), str(cohort_a.root), str(out), kind], out))
            runs[kind] = out
        return runs[kind]

    return run


@pytest.mark.parametrize("kind", ["binary", "ensemble"])
def test_two_processes_train_as_one_does(kind, one_process, cohort_a, tmp_path):
    one, two = one_process(kind), tmp_path / "two"
    _ok(torchrun([str(WORKER), str(cohort_a.root), str(two), kind], tmp_path))
    assert json.loads((two / "history.json").read_text())["processes"] == 2
    _same_run(one, two)
    if kind == "ensemble":  # the frozen members did not move
        from data_parallel_worker import network  # members are seeded: compare against a fresh build

        fresh = network("ensemble").double().state_dict()
        trained = load_file(str(two / "weights.safetensors"))
        for k, v in fresh.items():
            if k.startswith("members."):
                torch.testing.assert_close(trained[f"model.{k}"], v, msg=k)


def test_a_run_of_two_resumes_with_one_as_if_never_stopped(one_process, cohort_a, tmp_path):
    whole, split = one_process("binary"), tmp_path / "split"
    checkpoint = tmp_path / "run.safetensors"
    _ok(torchrun([str(WORKER), str(cohort_a.root), str(split), "binary", "--epochs", "1", "--checkpoint", str(checkpoint)], tmp_path))
    _ok(alone([str(WORKER), str(cohort_a.root), str(split), "binary", "--checkpoint", str(checkpoint), "--resume"], tmp_path))
    _same_run(whole, split)


def _train_args(cohort: Path, out: Path, *more: str) -> list[str]:
    return [
        "-m", "zoo_ensemble", "train", "--organ", "heart", "--data", str(cohort), "--out", str(out), "--size", "64",
        "--spacing", "4,4", "--steps", "2", "--device", "cpu", *more,
    ]


def test_zoo_train_under_torchrun_writes_one_model_folder(cohort_a, tmp_path):
    out = tmp_path / "heart"
    proc = torchrun(_train_args(cohort_a.root, out, "--epochs", "1", "--batch-size", "4"), tmp_path)
    _ok(proc)
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert proc.stdout.count("saved ") == 1  # rank 0 speaks for the run
    assert not list(tmp_path.rglob("*.tmp*"))


@pytest.mark.parametrize("more,says", [
    (["--batch-size", "3"], "does not split evenly across 2 processes"),
    (["--batch-size", "1"], "fewer slices per step than the 2 processes"),
])
def test_bad_launches_are_one_line_from_rank_0(more, says, cohort_a, tmp_path):
    proc = torchrun(_train_args(cohort_a.root, tmp_path / "m", "--epochs", "1", *more), tmp_path)
    assert proc.returncode != 0
    assert _ours(proc.stderr) == [next(line for line in _ours(proc.stderr) if says in line)]
    assert "Traceback" not in proc.stderr.split("torch/distributed/elastic")[0]  # none of ours
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine runs NCCL")
def test_nccl_without_a_gpu_is_one_line(cohort_a, tmp_path):
    proc = torchrun(_train_args(cohort_a.root, tmp_path / "m", "--epochs", "1", "--batch-size", "4"), tmp_path, ZOO_DIST_BACKEND="nccl")
    assert proc.returncode != 0
    lines = _ours(proc.stderr)
    assert len(lines) == 1 and "NCCL asked for" in lines[0] and "no CUDA GPU" in lines[0], proc.stderr[-2000:]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the ranks through Linux's /proc")
def test_killing_one_process_ends_the_run_with_one_line_and_a_resumable_checkpoint(cohort_a, tmp_path):
    out, home = tmp_path / "heart", tmp_path / "home"
    checkpoint = home / "runs" / "heart-unet" / "checkpoint.safetensors"
    cmd = [TORCHRUN, "--nproc-per-node", "2", "--standalone", *_train_args(cohort_a.root, out, "--epochs", "40", "--batch-size", "4")]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(home))
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
        assert checkpoint.exists(), "no epoch finished"
        victim = next(c for c in _children(run.pid) if _rank_of(c) == 1)
        os.kill(victim, signal.SIGKILL)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    lines = _ours(stderr)
    # rank 0 says it in one line: from its broken connection, or from torchrun's SIGTERM if that came first
    assert len(lines) == 1 and lines[0].startswith("error: rank 0:") and "--resume" in lines[0], stderr[-2000:]
    assert "another process of the run" in lines[0]
    assert not out.exists()
    # one process resumes where the two stopped
    resumed = alone([*_train_args(cohort_a.root, out, "--epochs", "2", "--batch-size", "4"), "--resume"], home)
    _ok(resumed)
    assert (out / "model.safetensors").is_file()


def test_a_cohort_shared_by_two_processes_gives_what_one_gives(member_zoo, cohort_a, tmp_path):
    import numpy as np
    import SimpleITK as sitk

    cts = tmp_path / "cts"
    cts.mkdir()
    cases = cohort_a.cases[:3]
    for case in cases:
        (cts / Path(case.image).name).symlink_to(case.image)
    (cts / "broken.nii.gz").write_text("not an image")
    args = ["-m", "zoo_ensemble", "predict", "heart-unet", str(cts), "--statistics", "--device", "cpu"]
    one = alone([*args, "-o", str(tmp_path / "one")], member_zoo)
    two = torchrun([*args, "-o", str(tmp_path / "two")], member_zoo)
    assert one.returncode == two.returncode == 1  # the broken case
    n = len(cases)
    assert f"{n} cases segmented, 0 already done, 1 failed" in two.stdout and "2 processes" in two.stdout
    assert two.stdout.count("cases segmented") == 1 and two.stderr.count("failed: broken") == 1
    for case in cases:
        name = Path(case.image).name
        a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / d / name))) for d in ("one", "two"))
        assert np.array_equal(a, b), name
    assert json.loads((tmp_path / "two" / "statistics.json").read_text()) == json.loads((tmp_path / "one" / "statistics.json").read_text())
    again = torchrun([*args, "-o", str(tmp_path / "two")], member_zoo)
    assert f"0 cases segmented, {n} already done, 1 failed" in again.stdout


MINI_PRESET = """\
seed: 0
device: cpu
organs: [heart, trachea]
architectures: [unet]
data:
  phantom: {scale: 4.0, A: 4, B: 3}
model: {variant: tiny, input_size: [64, 64], spacing: [4.0, 4.0]}
train:
  binary: {epochs: 1, steps_per_epoch: 2, batch_size: 4}
  multiclass: {epochs: 1, steps_per_epoch: 2, batch_size: 4}
  ensemble: {epochs: 1, steps_per_epoch: 2, batch_size: 4, augment: false}
"""

MINI_EXPERIMENT = """\
mini:
  title: "Two ensembles of the pool"
  table: X
  entries:
    - {name: Argmax, method: argmax}
    - {name: Meta U-Net, method: meta_unet}
  members: {best: true}
"""


def test_experiment_run_under_torchrun_writes_once_and_resumes(tmp_path):
    (tmp_path / "preset.yaml").write_text(MINI_PRESET)
    (tmp_path / "exps.yaml").write_text(MINI_EXPERIMENT)
    args = ["-m", "zoo_ensemble", "experiment", "run", "mini", "--preset", str(tmp_path / "preset.yaml"), "--experiments", str(tmp_path / "exps.yaml")]
    two = torchrun([*args, "--out", str(tmp_path / "two")], tmp_path)
    _ok(two)
    assert two.stdout.count("done in") == 1 and "(2 networks trained, 0 reused)" in two.stdout
    assert (tmp_path / "two" / "report" / "README.md").is_file()
    # (training by two processes follows one process: the equivalence tests above)
    for slug in ("argmax", "meta_unet"):
        result = json.loads((tmp_path / "two" / "results" / "mini" / f"{slug}.json").read_text())
        assert result["report"]["organs"].keys() == {"heart", "trachea"} and result["members"] == ["heart-unet", "trachea-unet"]
        assert (tmp_path / "two" / result["folder"] / "model.safetensors").is_file()
    assert (tmp_path / "two" / "ensembles" / "mini" / "meta_unet" / "model.safetensors").is_file()
    again = torchrun([*args, "--out", str(tmp_path / "two")], tmp_path)
    _ok(again)
    assert "(0 networks trained, 2 reused)" in again.stdout
