"""The fast CPU path: precision chosen from what the hardware has (detected from the CPU's flags),
bf16 against fp32 on trained models, channels-last against the plain layout, all-air slices
skipped without changing anything inside the body, threads from the CPUs the process may use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo_ensemble import devices
from zoo_ensemble.cli import main
from zoo_ensemble.devices import PrecisionError, cgroup_cpu_quota, resolve_precision, usable_cpus
from zoo_ensemble.inference import body_slices
from zoo_ensemble.metrics import dice
from zoo_ensemble.volumes import read_ct, read_labels

CPU = torch.device("cpu")


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))


@pytest.fixture
def with_bf16(monkeypatch):
    """Pretend the CPU has AVX512-BF16: oneDNN then emulates what such a CPU computes natively."""
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))


def test_precision_follows_the_hardware(no_bf16):
    assert resolve_precision("fp32", CPU) is None and resolve_precision("auto", CPU) is None
    with pytest.raises(PrecisionError, match="bf16: this CPU .* has no bf16 arithmetic; use fp32 or auto"):
        resolve_precision("bf16", CPU)
    with pytest.raises(PrecisionError, match="fp16: a CPU only emulates fp16"):
        resolve_precision("fp16", CPU)
    with pytest.raises(PrecisionError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)


def test_bf16_only_when_asked_for_where_the_cpu_has_it(with_bf16):
    # auto stays fp32 on a CPU with bf16: bf16 moves organs' Dice by more than 0.002 on some
    # trained models (bench_bf16_accuracy.py), so the default gives the same contours on any CPU
    assert resolve_precision("auto", CPU) is None and resolve_precision("bf16", CPU) is torch.bfloat16


def test_auto_is_fp16_on_a_gpu():
    cuda = torch.device("cuda")  # resolving needs no GPU: auto and fp16 are the same on every one
    assert resolve_precision("auto", cuda) is torch.float16 and resolve_precision("fp16", cuda) is torch.float16


def test_cpus_follow_affinity_and_the_cgroup_quota(monkeypatch, tmp_path):
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    monkeypatch.setattr(devices, "cgroup_cpu_quota", lambda: None)
    assert usable_cpus() == 6
    monkeypatch.setattr(devices, "cgroup_cpu_quota", lambda: 2.5)
    assert usable_cpus() == 2
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 3.0


def test_threads_are_set_to_the_usable_cpus(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(devices, "usable_cpus", lambda: 1)
    try:
        assert devices.configure_threads.__wrapped__() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bad_precision_and_device_are_one_line(in_member_zoo, no_bf16, cohort_a, tmp_path, capsys):
    ct = str(cohort_a.cases[0].image)
    for args, words in (
        (["--precision", "bf16"], "has no bf16 arithmetic"),
        (["--device", "cuda:7"], "CUDA is not available"),
        (["--device", "mps"], "not supported"),
        (["--device", "gpu0"], "unknown device"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(["predict", "heart-unet", ct, "-o", str(tmp_path / "x.nii.gz"), *args])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and words in err and len(err.strip().splitlines()) == 1, args
    assert not (tmp_path / "x.nii.gz").exists()


@pytest.fixture
def thorax(monkeypatch):
    pytest.importorskip("zoo_thorax", reason="the zoo-thorax plugin is not installed (pip install ./plugins/zoo-thorax)")
    monkeypatch.setenv("ZOO_PLUGINS", "thorax")


def _predict(model_id: str, volume, **options):
    from zoo_ensemble.zoo.model import ZooModel

    predictor = ZooModel.from_pretrained(model_id).predictor("cpu", **{k: v for k, v in options.items() if k == "precision"})
    for key in ("skip_air", "memory_format"):
        if key in options:
            setattr(predictor, key, options[key])
    if options.get("memory_format") is torch.contiguous_format:
        predictor.model.to(memory_format=torch.contiguous_format)
    return predictor.predict(volume)


@pytest.mark.parametrize("model_id", ["heart-deeplabv3", "lung_left-unet", "trachea-se_resunet"])
def test_bf16_agrees_with_fp32_on_trained_models(thorax, with_bf16, cohort_a, model_id):
    case = cohort_a.cases[0]
    volume = read_ct(case.image)
    organ = model_id.split("-")[0]
    truth = cohort_a.label_map.mask(read_labels(case.labels).array, organ)
    fp32 = _predict(model_id, volume, precision="fp32").labels > 0
    bf16 = _predict(model_id, volume, precision="bf16").labels > 0
    assert fp32.sum() > 100
    change = abs(dice(bf16, truth) - dice(fp32, truth))
    assert change <= 0.002 and float((fp32 == bf16).mean()) >= 0.999, (change, float((fp32 == bf16).mean()))


def test_channels_last_gives_the_same_labels(thorax, cohort_b):
    volume = read_ct(cohort_b.cases[0].image)
    fast = _predict("heart-deeplabv3", volume).labels
    plain = _predict("heart-deeplabv3", volume, memory_format=torch.contiguous_format).labels
    assert fast.any() and float((fast == plain).mean()) >= 0.99999


def test_air_slices_are_skipped_and_nothing_in_the_body_changes(thorax, cohort_b):
    volume = read_ct(cohort_b.cases[0].image)
    air = np.full((5, *volume.shape[1:]), -1024, volume.array.dtype)
    volume.array = np.concatenate([air, volume.array, air])
    body = body_slices(volume.array)
    assert body[0] == 5 and body[-1] == volume.shape[0] - 6
    skipped = _predict("lung_left-deeplabv3", volume)
    full = _predict("lung_left-deeplabv3", volume, skip_air=False)
    assert skipped.extra["slices_run"] == len(body) < volume.shape[0]
    assert np.array_equal(skipped.labels[body], full.labels[body])
    assert not skipped.labels[:5].any() and not skipped.labels[-5:].any()


def test_bf16_training_follows_fp32_on_a_short_run(with_bf16, tiny_slices):
    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.training.trainer import TrainConfig, Trainer

    train, val, organs = tiny_slices
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model(make_config("unet", organs, "tiny", input_size=[64, 64], spacing=[4.0, 4.0]))
        trainer = Trainer(model, train, val, organs, TrainConfig(epochs=3, steps_per_epoch=3, batch_size=4, device="cpu", precision=precision, augment=False))
        assert trainer.autocast_dtype == (torch.bfloat16 if precision == "bf16" else None)
        losses[precision] = [trainer.train_epoch(epoch) for epoch in range(3)]
    fp32, bf16 = np.array(losses["fp32"]), np.array(losses["bf16"])
    assert np.all(np.abs(bf16 - fp32) <= 0.03 * fp32), (fp32, bf16)  # the same run, within bf16's rounding
    assert bf16[-1] < bf16[0]  # and it learns


_FAULTS = """
import resource, sys
import zoo_ensemble, os, torch
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    x = torch.ones(16 * 1024 * 1024)  # 64 MiB, freed as the next one comes
print(os.environ["THP_MEM_ALLOC_ENABLE"], resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _faults(env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


def test_large_tensors_use_huge_pages_unless_the_user_says_otherwise():
    base = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    setting, faults_on = _faults(base)
    kept, faults_off = _faults({**base, "THP_MEM_ALLOC_ENABLE": "0"})
    assert (setting, kept) == ("1", "0")  # importing zoo_ensemble sets it; the user's own value wins
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[never]" in thp.read_text():
        pytest.skip("the kernel has transparent huge pages off")
    assert faults_off >= 4 * 16384 * 0.9  # 4 KiB pages: one fault each
    assert faults_on <= faults_off / 10, (faults_on, faults_off)
