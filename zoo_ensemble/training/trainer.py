"""The trainer every model goes through: organ models, multiclass models and ensembles.

A model here is any ``nn.Module`` mapping raw HU slices ``(B, 1, H, W)`` to logits
``(B, C, H, W)``; only parameters with ``requires_grad`` are optimised (ensembles freeze their
members). Each epoch draws ``steps_per_epoch`` batches from a sampler seeded by (seed, epoch)
and augments each slice with a seed of its own, so resuming from an epoch checkpoint continues
exactly as the uninterrupted run would have. Under torchrun every process takes its share of
each step's batch and the model trains in DistributedDataParallel so that the run follows the
single process (see ``data_parallel.py``); only rank 0 reports and writes checkpoints, and a run
resumes with any number of processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..data.augment import Augmenter, sample_seed
from ..data.slices import CaseSlices, EpochSampler, SliceDataset, slice_weights
from ..devices import cpu_layout, resolve_precision
from ..distributed import join, main_decides, sum_across, sum_across_with_grad
from ..errors import TrainingError
from ..inference import labels_from_probabilities
from ..ensembles.shared import tensors_sha256
from .checkpoint import TrainingState, load_checkpoint, save_checkpoint
from .data_parallel import per_rank_batch, synced_batchnorm, validation_indices, wrap
from .losses import MaskedDiceBCELoss
from .schedule import Schedule, ScheduleConfig

log = logging.getLogger("zoo_ensemble")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    steps_per_epoch: int = 40
    batch_size: int = 8
    lr: float = 1e-3
    schedule: ScheduleConfig = ScheduleConfig()
    max_minutes: float | None = None  # wall-clock budget; stops after the epoch that crosses it
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None  # None: on for CUDA, off on CPU; False: fp32 everywhere
    precision: str = "auto"  # auto (CUDA: fp16 AMP; CPU: fp32), bf16 (autocast where the hardware has it), fp16 (CUDA), fp32
    augment: bool = True
    num_workers: int = 0  # augmentation runs on the device: the loader only gathers prepared slices
    val_batch_size: int = 16
    small_boost: float = 3.0

    def fingerprint(self) -> str:
        """What must match for a checkpoint to be resumed (time budget and device may change)."""
        d = asdict(self)
        for k in ("max_minutes", "device", "num_workers", "val_batch_size", "epochs", "precision"):
            d.pop(k)
        if d["schedule"]["decay_steps"] is None:  # absent before it existed: older checkpoints still resume
            del d["schedule"]["decay_steps"]
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _training_autocast(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a training run: fp16 AMP on CUDA by default, bf16 or fp16 when
    asked for (and the hardware has it), fp32 on the CPU unless asked."""
    return resolve_precision("fp32" if config.amp is False else config.precision, device)


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """A checkpoint's optimizer state, keeping this run's choice of a fused step: a run started
    on the CPU (unfused) may resume on a GPU (fused), whose step counts must then live on the
    GPU, and the other way round; torch would take the choice from the checkpoint."""
    fused = optimizer.defaults.get("fused")
    groups = [{**group, "fused": fused} for group in saved["param_groups"]]
    optimizer.load_state_dict({"state": saved["state"], "param_groups": groups})


class Reporter(Protocol):
    def start(self, epochs: int, steps: int, start_epoch: int) -> None: ...
    def step(self, epoch: int, step: int, loss: float, lr: float) -> None: ...
    def epoch_end(self, epoch: int, record: dict[str, Any], seconds_left: float | None) -> None: ...
    def finish(self, reason: str) -> None: ...


class NullReporter:
    def start(self, epochs: int, steps: int, start_epoch: int) -> None:
        pass

    def step(self, epoch: int, step: int, loss: float, lr: float) -> None:
        pass

    def epoch_end(self, epoch: int, record: dict[str, Any], seconds_left: float | None) -> None:
        pass

    def finish(self, reason: str) -> None:
        pass


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_val_loss: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = "epochs"
    seconds: float = 0.0
    device: str = "cpu"


def resolved(logits: torch.Tensor) -> torch.Tensor:
    """Each organ's pixels ``(B, C, H, W)`` as prediction labels them: where several organs pass
    the threshold the most confident one wins (:func:`inference.labels_from_probabilities`), so
    validation scores the label map the test scores, not each channel on its own."""
    if logits.shape[1] == 1:
        return logits > 0
    label, _ = labels_from_probabilities(torch.sigmoid(logits), 0.5)
    return torch.stack([label == c + 1 for c in range(logits.shape[1])], dim=1)


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        train_cases: Sequence[CaseSlices],
        val_cases: Sequence[CaseSlices],
        organs: Sequence[str],
        config: TrainConfig = TrainConfig(),
        checkpoint: str | Path | None = None,
        reporter: Reporter | None = None,
    ):
        if not train_cases:
            raise TrainingError("no training cases")
        if not val_cases:
            raise TrainingError("no validation cases: training needs a patient-level validation split")
        self.model, self.organs, self.config = model, list(organs), config
        self.world, self.device = join(config.device)
        self.rank_batch = per_rank_batch(config.batch_size, self.world)
        self.autocast_dtype = _training_autocast(config, self.device)
        self.amp = self.autocast_dtype is not None
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.reporter = (reporter or NullReporter()) if self.world.is_main else NullReporter()
        self.train_set = SliceDataset(train_cases)
        self.augmenter = Augmenter() if config.augment else None
        # one loader each for the run, so that --workers processes live across epochs
        self._train_loader: DataLoader | None = None
        self._val_loader: DataLoader | None = None
        self.val_set = SliceDataset(val_cases)
        weights = slice_weights(train_cases, self.organs, small_boost=config.small_boost)
        self.sampler = EpochSampler(weights, config.steps_per_epoch * config.batch_size, config.seed, self.world.rank, self.world.size)
        self.loss_fn = MaskedDiceBCELoss()
        self.model.to(self.device)
        # an ensemble's frozen members stay out of every epoch's checkpoint (they are most of its
        # bytes and never change); the checkpoint keeps their digest, which a resume compares
        frozen = getattr(model, "frozen_state", None)
        self.frozen = set(frozen()) if callable(frozen) else set()
        state = self.model.state_dict()
        self.frozen_digest = tensors_sha256((k, state[k]) for k in self.frozen) if self.frozen and self.checkpoint else None
        self.net = wrap(self.model, self.device) if self.world.active else self.model
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise TrainingError("the model has no trainable parameters")
        # fused on CUDA: one kernel for the step, and with fp16's gradient scaling the check for
        # overflow stays on the GPU (the unfused step makes the host wait for it every step)
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True if self.device.type == "cuda" else None)
        self.schedule = Schedule(self.optimizer, config.schedule, config.steps_per_epoch)
        # fp16 needs its gradients scaled; bf16 has fp32's range and does not
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)

    # --- one epoch -----------------------------------------------------------------------
    def _loader(self, dataset: SliceDataset | Subset, sampler: EpochSampler | None, batch: int) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch,
            sampler=sampler,
            shuffle=False,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",  # so that the copies to the GPU can overlap its work
            drop_last=False,
            persistent_workers=self.config.num_workers > 0,  # items do not change between epochs
        )

    def _autocast(self) -> Any:
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.amp)

    def train_epoch(self, epoch: int) -> float:
        self.net.train()
        self.sampler.set_epoch(epoch)
        total, n = 0.0, 0
        # Each step's loss is read (a wait for the device) only once the next step is queued,
        # so that a GPU never idles while the host reads a number and launches the next step.
        pending: tuple[int, torch.Tensor] | None = None
        if self._train_loader is None:
            self._train_loader = self._loader(self.train_set, self.sampler, self.rank_batch)
        for step, batch in enumerate(self._train_loader, start=1):
            image = batch["image"].to(self.device, non_blocking=True)
            mask = batch["mask"].to(self.device, non_blocking=True)
            annotated = batch["annotated"].to(self.device, non_blocking=True)
            if self.augmenter is not None:  # on the device, the whole batch at once
                seeds = [sample_seed(self.config.seed, epoch, int(i)) for i in batch["index"]]
                image, mask = self.augmenter(image, mask, seeds)
            image = cpu_layout(image)  # member outputs as prediction lays them out
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                logits = self.net(image)
            loss = self.loss_fn(logits, mask, annotated, sum_across_with_grad)  # alone: the tensor itself
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if pending is not None:
                total += self._settle(epoch, *pending)
                n += 1
            pending = (step, loss.detach())
        if pending is not None:
            total += self._settle(epoch, *pending)
            n += 1
        return total / max(n, 1)

    def _settle(self, epoch: int, step: int, loss: torch.Tensor) -> float:
        """A finished step's loss as a number, reported; a loss that is not finite stops the run."""
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(f"loss became {value} at epoch {epoch + 1}, step {step}; lower the learning rate")
        self.reporter.step(epoch, step, value, self.schedule.lr)
        return value

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Validation loss over every slice of the validation patients, and each organ's 3D Dice
        per patient (from voxel counts accumulated over its slices), averaged over patients.
        Under torchrun each process takes whole batches and the sums are added up."""
        self.model.eval()
        n_case, n_org = len(self.val_set.cases), len(self.organs)
        counts = np.zeros((n_case, n_org, 3))  # tp, fp, fn
        case_index = {f"{c.dataset}/{c.case_id}": i for i, c in enumerate(self.val_set.cases)}
        loss_sum, n = 0.0, 0
        if self._val_loader is None:
            mine = Subset(self.val_set, validation_indices(len(self.val_set), self.config.val_batch_size, self.world))
            self._val_loader = self._loader(mine, None, self.config.val_batch_size)
        for batch in self._val_loader:
            image = cpu_layout(batch["image"].to(self.device))
            mask = batch["mask"].to(self.device)
            annotated = batch["annotated"].to(self.device)
            with self._autocast():
                logits = self.model(image)
            loss_sum += self.loss_fn(logits, mask, annotated).item() * image.shape[0]
            n += image.shape[0]
            pred = resolved(logits.float())
            truth = mask > 0.5
            tp = (pred & truth).flatten(2).sum(-1).cpu().numpy()
            fp = (pred & ~truth).flatten(2).sum(-1).cpu().numpy()
            fn = (~pred & truth).flatten(2).sum(-1).cpu().numpy()
            for b, key in enumerate(batch["case"]):
                counts[case_index[key]] += np.stack([tp[b], fp[b], fn[b]], axis=-1)
        if self.world.active:
            summed = sum_across(torch.tensor(np.append(counts.ravel(), [loss_sum, n]), dtype=torch.float64)).numpy()
            counts, loss_sum, n = summed[:-2].reshape(counts.shape), float(summed[-2]), int(summed[-1])
        dice = {}
        for j, organ in enumerate(self.organs):
            vals = []
            for i, case in enumerate(self.val_set.cases):
                if case.annotated[j]:
                    tp, fp, fn = counts[i, j]
                    vals.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
            if vals:
                dice[organ] = float(np.mean(vals))
        return {"val_loss": loss_sum / max(n, 1), "val_dice": dice, "val_dice_mean": float(np.mean(list(dice.values()))) if dice else math.nan}

    # --- the run -------------------------------------------------------------------------
    def _state(self, epoch: int, best: dict[str, torch.Tensor], best_loss: float, best_epoch: int, history: list[dict[str, Any]], elapsed: float) -> TrainingState:
        def kept(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v for k, v in state.items() if k not in self.frozen}

        return TrainingState(
            epoch=epoch,
            model=kept(self.model.state_dict()),
            best=kept(best),
            optimizer=self.optimizer.state_dict(),
            meta={
                "frozen": self.frozen_digest,
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "best_val_loss": best_loss,
                "best_epoch": best_epoch,
                "history": history,
                "elapsed": elapsed,
                "fingerprint": self.config.fingerprint(),
                "processes": self.world.size,
                "torch_rng": torch.get_rng_state().tolist(),
            },
        )

    def _restore(self) -> tuple[int, dict[str, torch.Tensor], float, int, list[dict[str, Any]], float]:
        assert self.checkpoint is not None
        st = load_checkpoint(self.checkpoint)
        if st.meta.get("fingerprint") != self.config.fingerprint():
            raise TrainingError(f"{self.checkpoint}: made with different training settings; start a new run instead of --resume")
        if st.meta.get("frozen", self.frozen_digest) != self.frozen_digest:
            raise TrainingError(f"{self.checkpoint}: made with other frozen member weights; start a new run instead of --resume")
        own = {k: v.detach().cpu() for k, v in self.model.state_dict().items() if k in self.frozen}  # never change: no copy
        try:
            self.model.load_state_dict({**own, **st.model})
            load_optimizer_state(self.optimizer, st.optimizer)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise TrainingError(f"{self.checkpoint}: does not fit this model ({str(exc).splitlines()[0]})") from None
        best = {**own, **st.best} if st.best else {}
        self.schedule.load_state_dict(st.meta["schedule"])
        self.scaler.load_state_dict(st.meta["scaler"])
        torch.set_rng_state(torch.tensor(st.meta["torch_rng"], dtype=torch.uint8))
        before = int(st.meta.get("processes", 1))
        if before != self.world.size and self.world.is_main:
            log.info(
                f"resuming a run of {before} process(es) with {self.world.size}: each step still trains on the same "
                f"{self.config.batch_size} slices, now {self.rank_batch} per process"
            )
        return st.epoch, best, st.meta["best_val_loss"], st.meta["best_epoch"], st.meta["history"], st.meta["elapsed"]

    def fit(self, resume: bool = False) -> TrainResult:
        with synced_batchnorm(self.model, self.device) if self.world.active else nullcontext():
            return self._fit(resume)

    def _over_budget(self, elapsed: float) -> bool:
        """Whether the time budget is spent; rank 0's clock decides for every process."""
        return main_decides(self.config.max_minutes is not None and elapsed > self.config.max_minutes * 60)

    def _fit(self, resume: bool) -> TrainResult:
        start_epoch, best, best_loss, best_epoch, history, elapsed = 0, {}, math.inf, -1, [], 0.0
        if resume:
            start_epoch, best, best_loss, best_epoch, history, elapsed = self._restore()
        cfg = self.config
        self.reporter.start(cfg.epochs, cfg.steps_per_epoch, start_epoch)
        reason = "epochs"
        if history and history[-1].get("stop"):
            reason = history[-1]["stop"]
        t0 = time.monotonic() - elapsed
        for epoch in range(start_epoch, cfg.epochs):
            if reason != "epochs":
                break
            train_loss = self.train_epoch(epoch)
            record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "lr": self.schedule.lr, **self.validate()}
            if record["val_loss"] < best_loss:
                best_loss, best_epoch = record["val_loss"], epoch + 1
                best = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if self.schedule.step(record["val_loss"]):
                reason = record["stop"] = "early stopping"
            elapsed = time.monotonic() - t0
            if self._over_budget(elapsed) and reason == "epochs":
                reason = record["stop"] = "time budget"
            history.append(record)
            if self.checkpoint is not None and self.world.is_main:
                save_checkpoint(self.checkpoint, self._state(epoch + 1, best, best_loss, best_epoch, history, elapsed))
            per_epoch = elapsed / max(epoch + 1 - start_epoch, 1) if epoch + 1 > start_epoch else None
            left = per_epoch * (cfg.epochs - epoch - 1) if per_epoch else None
            if cfg.max_minutes is not None and left is not None:
                left = min(left, max(cfg.max_minutes * 60 - elapsed, 0.0))
            self.reporter.epoch_end(epoch, record, left)
        self.reporter.finish(reason)
        if not best:
            raise TrainingError("training ran no epoch")
        return TrainResult(best, best_loss, best_epoch, len(history), history, reason, time.monotonic() - t0, str(self.device))
