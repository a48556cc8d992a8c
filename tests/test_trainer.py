from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open

from zoo_ensemble.architectures import build_model, make_config
from zoo_ensemble.errors import TrainingError
from zoo_ensemble.training.checkpoint import load_checkpoint
from zoo_ensemble.training.trainer import Trainer, TrainConfig

CFG = TrainConfig(epochs=4, steps_per_epoch=3, batch_size=4, seed=1)


def _trainer(slices, config=CFG, checkpoint=None, reporter=None):
    train, val, organs = slices
    torch.manual_seed(0)
    model = build_model(make_config("unet", organs, "tiny", input_size=[64, 64], spacing=[4.0, 4.0]))
    return Trainer(model, train, val, organs, config, checkpoint, reporter)


class StopAt:
    """Interrupts training like Ctrl-C in the middle of an epoch."""

    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def start(self, *a):
        pass

    def step(self, epoch, step, loss, lr):
        if (epoch, step) == self.at:
            raise KeyboardInterrupt

    def epoch_end(self, *a):
        pass

    def finish(self, reason):
        pass


def test_resume_reaches_the_uninterrupted_result(tiny_slices, tmp_path):
    straight = _trainer(tiny_slices, checkpoint=tmp_path / "a.safetensors").fit()

    ckpt = tmp_path / "b.safetensors"
    with pytest.raises(KeyboardInterrupt):
        _trainer(tiny_slices, checkpoint=ckpt, reporter=StopAt(epoch=2, step=2)).fit()
    assert load_checkpoint(ckpt).epoch == 2  # the last complete epoch survived the interrupt
    resumed_trainer = _trainer(tiny_slices, checkpoint=ckpt)
    resumed = resumed_trainer.fit(resume=True)

    assert resumed.epochs_run == straight.epochs_run == 4
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in straight.history]
    for key, value in straight.best_state.items():
        assert torch.equal(value, resumed.best_state[key]), key
    final_a = load_checkpoint(tmp_path / "a.safetensors").model
    for key, value in resumed_trainer.model.state_dict().items():
        assert torch.equal(value.cpu(), final_a[key]), key


def test_checkpoint_is_plain_safetensors(tiny_slices, tmp_path):
    ckpt = tmp_path / "c.safetensors"
    _trainer(tiny_slices, TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4), ckpt).fit()
    with safe_open(str(ckpt), framework="pt") as fh:
        keys = list(fh.keys())
        assert "training_state" in fh.metadata()
    assert any(k.startswith("model.") for k in keys) and any(k.startswith("optim.") for k in keys)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_resume_refuses_other_settings(tiny_slices, tmp_path):
    ckpt = tmp_path / "d.safetensors"
    _trainer(tiny_slices, TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4), ckpt).fit()
    with pytest.raises(TrainingError, match="different training settings"):
        _trainer(tiny_slices, TrainConfig(epochs=2, steps_per_epoch=2, batch_size=4, lr=0.1), ckpt).fit(resume=True)
    with pytest.raises(TrainingError, match="no checkpoint"):
        _trainer(tiny_slices, CFG, tmp_path / "none.safetensors").fit(resume=True)


def test_training_lowers_the_loss_and_tracks_the_best_epoch(tiny_slices):
    result = _trainer(tiny_slices, TrainConfig(epochs=5, steps_per_epoch=6, batch_size=6, seed=0, augment=False)).fit()
    losses = [h["val_loss"] for h in result.history]
    assert min(losses[1:]) < losses[0]
    assert result.best_val_loss == min(losses)
    assert result.best_epoch == losses.index(min(losses)) + 1
    assert set(result.history[-1]["val_dice"]) == {"heart", "trachea"}


def test_early_stopping(tiny_slices):
    from zoo_ensemble.training.schedule import ScheduleConfig

    cfg = TrainConfig(epochs=30, steps_per_epoch=1, batch_size=2, lr=1e-7, schedule=ScheduleConfig(early_stop_patience=2, min_delta=1.0))
    result = _trainer(tiny_slices, cfg).fit()
    assert result.stopped == "early stopping" and result.epochs_run == 3


def test_no_validation_patients_is_an_error(tiny_slices):
    train, _, organs = tiny_slices
    with pytest.raises(TrainingError, match="validation"):
        Trainer(build_model(make_config("unet", organs)), train, [], organs, CFG)


def test_loader_workers_train_exactly_as_the_main_process_alone(tiny_slices):
    config = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=4, seed=1)  # augmented
    alone = _trainer(tiny_slices, config).fit()
    pooled = _trainer(tiny_slices, TrainConfig(**{**config.__dict__, "num_workers": 2})).fit()
    assert [h["train_loss"] for h in pooled.history] == [h["train_loss"] for h in alone.history]
    for key, value in alone.best_state.items():
        assert torch.equal(value, pooled.best_state[key]), key


@pytest.mark.parametrize("before, after", [(None, True), (True, None)])
def test_an_optimizer_state_resumes_fused_or_not_as_this_run_chooses(before, after):
    from zoo_ensemble.training.trainer import load_optimizer_state

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    first = torch.optim.Adam(model.parameters(), lr=1e-2, fused=before)
    model(torch.randn(3, 4)).sum().backward()
    first.step()
    saved = first.state_dict()
    second = torch.optim.Adam(model.parameters(), lr=1e-2, fused=after)
    load_optimizer_state(second, saved)
    assert all(g["fused"] is after for g in second.param_groups)
    model(torch.randn(3, 4)).sum().backward()
    second.step()  # a fused step with step counts left as the unfused run kept them would fail
    assert all(float(s["step"]) == 2 for s in second.state.values())


def test_a_loss_that_is_not_finite_stops_the_run_naming_its_step(tiny_slices):
    trainer = _trainer(tiny_slices)
    real = trainer.loss_fn
    calls = []

    def nan_at_step_2(*args):
        calls.append(1)
        value = real(*args)
        return value * float("nan") if len(calls) == 2 else value

    trainer.loss_fn = nan_at_step_2
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step 2"):
        trainer.train_epoch(0)


class Overlapping(torch.nn.Module):
    """Fixed logits: organ 0 passes everywhere (logit 2), organ 1 in a square, more confidently (5)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.full((x.shape[0], 2, *x.shape[-2:]), -5.0) + 0 * self.w
        out[:, 0] = 2.0
        out[:, 1, 8:24, 8:24] = 5.0
        return out


def test_validation_scores_the_label_map_the_test_scores():
    """Where two organs pass, the label map keeps the more confident one: organ 0 loses the
    square organ 1 wins, and validation says so (scoring each channel alone said 1.0)."""
    import numpy as np

    from zoo_ensemble.data.slices import CaseSlices

    masks = np.zeros((2, 2, 32, 32), np.uint8)
    masks[:, 0] = 1
    masks[:, 1, 8:24, 8:24] = 1
    case = CaseSlices("d", "c0", np.zeros((2, 32, 32), np.int16), masks, np.array([True, True]), (1.0, 1.0, 1.0))
    trainer = Trainer(Overlapping(), [case], [case], ["heart", "aorta"], TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, augment=False))
    dice = trainer.validate()["val_dice"]
    inside, outside = 16 * 16, 32 * 32 - 16 * 16
    assert dice["aorta"] == pytest.approx(1.0)
    assert dice["heart"] == pytest.approx(2 * outside / (2 * outside + inside))  # was 1.0 channel by channel


def test_decay_per_steps_does_not_depend_on_the_epoch_length():
    """0.97 per 250 steps: ten epochs of 25 steps end where one epoch of 250 does."""
    from zoo_ensemble.training.schedule import Schedule, ScheduleConfig

    def lr_after(epochs: int, steps: int) -> float:
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        schedule = Schedule(opt, ScheduleConfig(gamma=0.97, decay_steps=250, plateau_patience=100), steps_per_epoch=steps)
        for _ in range(epochs):
            schedule.step(1.0)
        return schedule.lr

    assert lr_after(10, 25) == pytest.approx(0.97e-3) == pytest.approx(lr_after(1, 250))
    assert ScheduleConfig().epoch_gamma(25) == 0.97  # without decay_steps: per epoch, as before
    old = TrainConfig().fingerprint()
    assert TrainConfig(schedule=ScheduleConfig(decay_steps=250)).fingerprint() != old


def _layer_fusion(organs, member_seed=0):
    """Layer fusion of one tiny U-Net per organ: frozen members whose last layers train."""
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble

    members, records = [], []
    for k, organ in enumerate(organs):
        torch.manual_seed(member_seed + k)
        cfg = make_config("unet", [organ], "tiny", input_size=[64, 64], spacing=[4.0, 4.0])
        members.append(build_model(cfg))
        records.append(MemberRecord(f"{organ}-unet", [organ], cfg.to_dict()))
    torch.manual_seed(0)
    return build_ensemble("layer_fusion", members, records, list(organs), {"init": "default"})


def test_an_ensemble_checkpoint_leaves_its_frozen_members_out_and_resumes_exactly(tiny_slices, tmp_path):
    train, val, organs = tiny_slices
    config = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=4, seed=1, augment=False)
    straight = Trainer(_layer_fusion(organs), train, val, organs, config).fit()

    ckpt = tmp_path / "e.safetensors"
    with pytest.raises(KeyboardInterrupt):
        Trainer(_layer_fusion(organs), train, val, organs, config, ckpt, StopAt(epoch=1, step=1)).fit()
    saved = load_checkpoint(ckpt)
    ensemble = _layer_fusion(organs)
    trainable = {n for n, p in ensemble.named_parameters() if p.requires_grad}
    frozen = set(ensemble.state_dict()) - set(saved.model)
    assert frozen == set(ensemble.frozen_state()) and len(frozen) > 20
    assert all(k.startswith("members.") and k not in trainable for k in frozen)
    assert any(k.startswith("members.") for k in trainable & set(saved.model))  # the unfrozen last layers are kept

    resumed = Trainer(ensemble, train, val, organs, config, ckpt).fit(resume=True)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in straight.history]
    assert set(resumed.best_state) == set(straight.best_state)
    for key, value in straight.best_state.items():
        assert torch.equal(value, resumed.best_state[key]), key

    with pytest.raises(TrainingError, match="other frozen member weights"):
        Trainer(_layer_fusion(organs, member_seed=7), train, val, organs, config, ckpt).fit(resume=True)


def test_member_outputs_reach_the_combiner_channels_last_on_a_cpu(tiny_slices):
    """Several-channel inputs (member outputs) are laid out as prediction lays them out, in
    training and validation; a one-channel HU slice is left as it is."""
    from dataclasses import replace

    train, val, organs = tiny_slices
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, len(organs), 1)

        def forward(self, x):
            seen.append((x.shape[1], x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()))
            return self.conv(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)

    three = [replace(c, image=np.repeat(np.asarray(c.image)[:, None], 3, axis=1)) for c in train + val]
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, seed=0, augment=False)
    Trainer(Spy(), three[: len(train)], three[len(train) :], organs, config).fit()
    assert seen and all(layout for channels, layout in seen)
    seen.clear()
    Trainer(Spy(), train, val, organs, config).fit()
    assert seen and all(channels == 1 for channels, _ in seen)
