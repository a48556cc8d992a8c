"""GPU checks, run by benchmarks/gpu_check.sh where a GPU is lent: a mixed-precision training step
on CUDA, and CUDA prediction equal to the CPU's within tolerance. Skipped without CUDA;
ZOO_GPU_DRY_RUN=1 runs the same checks with the CPU standing in (gpu_check.sh --dry-run)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from zoo_ensemble.architectures import build_model, make_config


@pytest.fixture
def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("ZOO_GPU_DRY_RUN"):
        return torch.device("cpu")
    pytest.skip("no CUDA device (benchmarks/gpu_check.sh --dry-run runs these on the CPU)")


def test_a_mixed_precision_training_step_learns(device, tiny_slices):
    from zoo_ensemble.training.trainer import Trainer, TrainConfig

    train, val, organs = tiny_slices
    torch.manual_seed(0)
    model = build_model(make_config("unet", organs, "tiny", input_size=[64, 64], spacing=[4.0, 4.0]))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, train, val, organs, TrainConfig(epochs=1, steps_per_epoch=3, batch_size=4, device=str(device), augment=False))
    assert trainer.autocast_dtype == (torch.float16 if device.type == "cuda" else None)
    loss = trainer.train_epoch(0)
    assert np.isfinite(loss) and loss > 0
    assert any(not torch.equal(b, p.detach().cpu()) for b, p in zip(before, model.parameters()))


def test_prediction_on_the_device_equals_the_cpus(device, cohort_a):
    from zoo_ensemble.inference import InferenceConfig, Predictor
    from zoo_ensemble.volumes import read_ct

    torch.manual_seed(0)
    volume = read_ct(cohort_a.cases[0].image)
    model = build_model(make_config("deeplabv3", ["heart", "trachea"], "tiny", input_size=[64, 64], spacing=[4.0, 4.0]))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    on_cpu = Predictor(model, InferenceConfig(("heart", "trachea"), (64, 64), spacing=(4.0, 4.0)), batch_size=8).predict(volume, probabilities=True)
    model.load_state_dict(state)
    there = Predictor(model, InferenceConfig(("heart", "trachea"), (64, 64), spacing=(4.0, 4.0)), device, batch_size=8).predict(volume, probabilities=True)
    for organ in ("heart", "trachea"):
        assert np.abs(on_cpu.probabilities[organ] - there.probabilities[organ]).max() <= 1e-2, organ  # cuDNN may use TF32 for fp32 convolutions
    assert float((on_cpu.labels == there.labels).mean()) >= 0.999
