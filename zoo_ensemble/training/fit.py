"""The one training recipe, shared by organ models and ensembles: split the data by patient,
prepare the slices at the model's grid, train through the :class:`Trainer` (resumable), and keep
the best epoch by validation loss."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..architectures.volume import VolumeNetwork
from ..data.dataset import Case, Dataset
from ..data.slices import CaseSlices, load_cases
from ..distributed import join, main_first
from ..errors import TrainingError
from ..input_range import InputRange
from ..paths import member_cache_dir, slice_cache_dir
from .data_parallel import per_rank_batch
from .member_cache import CacheTooLarge, cached_outputs
from .trainer import Reporter, TrainConfig, Trainer, TrainResult

log = logging.getLogger("zoo_ensemble")

Pairs = list[tuple[Dataset, Case]]


@dataclass
class SplitCases:
    """The (dataset, case) pairs of each split, by patient."""

    train: Pairs
    val: Pairs
    test: Pairs


@dataclass(frozen=True)
class SplitPlan:
    """How patients are split: a seeded shuffle per dataset (or its manifest's fixed splits), and
    optionally a seeded share of the training patients (data scarcity, the paper's experiment 5)."""

    seed: int = 0
    val: float = 0.15
    test: float = 0.15
    train_fraction: float = 1.0

    def split(self, datasets: Sequence[Dataset], organs: Sequence[str]) -> SplitCases:
        """The labelled cases of datasets that annotate any of ``organs``, split by patient."""
        out = SplitCases([], [], [])
        for ds in datasets:
            if not any(ds.annotates(o) for o in organs):
                continue
            parts = ds.split(self.seed, self.val, self.test)
            for name in ("train", "val", "test"):
                getattr(out, name).extend((ds, c) for c in parts[name] if c.labels is not None)
        if self.train_fraction != 1.0:
            out.train = subsample_pairs(out.train, self.train_fraction, self.seed)
        return out


def subsample_pairs(pairs: Pairs, fraction: float, seed: int = 0) -> Pairs:
    """A seeded share of each dataset's patients (at least one per dataset), in the original order."""
    if not 0 < fraction <= 1:
        raise TrainingError(f"train fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for name in dict.fromkeys(ds.name for ds, _ in pairs):
        idx = [i for i, (ds, _) in enumerate(pairs) if ds.name == name]
        k = max(1, int(round(len(idx) * fraction)))
        keep.update(int(i) for i in rng.choice(idx, size=k, replace=False))
    return [p for i, p in enumerate(pairs) if i in keep]


def check_organs_annotated(organs: Sequence[str], datasets: Sequence[Dataset]) -> None:
    for organ in organs:
        if not any(ds.annotates(organ) for ds in datasets):
            names = ", ".join(ds.name for ds in datasets)
            raise TrainingError(f"no dataset annotates {organ!r} (datasets: {names}); it cannot be learned from them")


def prepare(pairs: Sequence[tuple[Dataset, Case]], organs: Sequence[str], size: Sequence[int], spacing: Sequence[float] | None, progress: Callable[[int, int], None] | None = None) -> list[CaseSlices]:
    """Every case's slices resampled to ``spacing`` and cropped to ``size`` (cached on disk)."""
    out: list[CaseSlices] = []
    for i, (ds, case) in enumerate(pairs, start=1):
        out.extend(load_cases(ds, [case], list(organs), tuple(size), tuple(spacing) if spacing else None, slice_cache_dir()))
        if progress:
            progress(i, len(pairs))
    return out


@dataclass
class TrainingRun:
    """Where and how one network trains: the schedule, the resumable checkpoint's folder, and
    who shows progress."""

    config: TrainConfig
    run_dir: Path
    resume: bool = False
    reporter: Reporter | None = None
    prepare_progress: Callable[[int, int], None] | None = None


@dataclass
class Fitted:
    result: TrainResult
    train_cases: list[CaseSlices]
    val_cases: list[CaseSlices]
    trained_on: InputRange | None  # the grids of the training and validation scans


def training_inputs(
    model: torch.nn.Module, splits: SplitCases, organs: Sequence[str], grid: tuple[Sequence[int], Sequence[float] | None], device: str,
    cached: bool, progress: Callable[[int, int], None] | None = None,
) -> list[CaseSlices]:
    """The training then validation cases of ``splits``, prepared at ``grid``; with ``cached``,
    the members' outputs on them instead (computed once, see :mod:`.member_cache`). Calling it
    ahead of :func:`fit` with the same arguments fills the caches that ``fit`` then reads."""
    if not cached:
        whole = [info.model_id for m, info in zip(getattr(model, "members", []), getattr(model, "infos", [])) if isinstance(m, VolumeNetwork)]
        if whole:
            raise TrainingError(
                f"{', '.join(whole)} predicts whole volumes, not slices at every step: a combiner trains on its outputs "
                "in the member cache (drop --no-cache and slice augmentation)"
            )
    both = prepare(splits.train + splits.val, organs, grid[0], grid[1], progress)
    return cached_outputs(model, both, member_cache_dir(), device) if cached else both


def _inputs_cached_if_they_fit(model: torch.nn.Module, splits: SplitCases, organs: Sequence[str], grid: tuple[Sequence[int], Sequence[float] | None], run: TrainingRun, progress: Callable[[int, int], None] | None) -> tuple[list[CaseSlices], bool]:
    """:func:`training_inputs` from the cache; layer fusion's trunks (many times the logits'
    size: 6.9 GiB for 24 phantoms of six 160-pixel members) fall back to running the members
    at every step when they would not fit, and say so; logits that would not fit stay an error."""
    try:
        return training_inputs(model, splits, organs, grid, run.config.device, True, progress), True
    except CacheTooLarge as exc:
        if getattr(model, "CACHE_PART", "output") == "output":
            raise
        log.warning("%s; training with the members run at every step instead", exc)
        return training_inputs(model, splits, organs, grid, run.config.device, False, progress), False


def fit(
    model: torch.nn.Module, organs: Sequence[str], splits: SplitCases, grid: tuple[Sequence[int], Sequence[float] | None], run: TrainingRun,
    cached: bool = False,
) -> Fitted:
    """Train ``model`` on ``splits`` at ``grid`` (input size, spacing) and load its best epoch.
    ``cached``: ``model`` is an ensemble whose combiner trains on its members' outputs, computed
    once per case and read from disk (:mod:`zoo_ensemble.training.member_cache`), not on HU."""
    if not splits.train or not splits.val:
        raise TrainingError("the datasets give no training or no validation patients for these organs; add cases")
    world, _ = join(run.config.device)
    per_rank_batch(run.config.batch_size, world)  # a batch the processes cannot share: said before slices are prepared
    with main_first():  # under torchrun rank 0 prepares and caches, the others read its cache
        progress = run.prepare_progress if world.is_main else None
        if cached:
            inputs, cached = _inputs_cached_if_they_fit(model, splits, organs, grid, run, progress)
        else:
            inputs = training_inputs(model, splits, organs, grid, run.config.device, False, progress)
    train_cases, val_cases = inputs[: len(splits.train)], inputs[len(splits.train) :]
    checkpoint = Path(run.run_dir) / "checkpoint.safetensors"
    if not run.resume and world.is_main:
        checkpoint.unlink(missing_ok=True)
    with model.on_member_outputs() if cached else contextlib.nullcontext():
        trainer = Trainer(model, train_cases, val_cases, list(organs), run.config, checkpoint, run.reporter)
        result = trainer.fit(resume=run.resume)
    model.load_state_dict(result.best_state)
    trained_on = InputRange.of_grids(c.grid for c in inputs if c.grid is not None)
    return Fitted(result, train_cases, val_cases, trained_on)
