"""Train a binary or multiclass organ model from datasets and save it as a zoo model folder."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..architectures import build_model, make_config
from ..zoo.cards import card_for, check_model_id
from ..data.dataset import Case, Dataset
from ..data.slices import CaseSlices, load_cases
from ..errors import TrainingError
from ..evaluation import Report
from ..input_range import InputRange
from ..zoo.folder import save_model
from ..paths import slice_cache_dir, zoo_home
from .trainer import Reporter, TrainConfig, TrainResult, Trainer


@dataclass
class SplitCases:
    """The cases of each dataset used for training and validation (by patient)."""

    train: list[tuple[Dataset, Case]]
    val: list[tuple[Dataset, Case]]
    test: list[tuple[Dataset, Case]]


def split_datasets(datasets: Sequence[Dataset], seed: int = 0, val: float = 0.15, test: float = 0.15) -> SplitCases:
    out = SplitCases([], [], [])
    for ds in datasets:
        parts = ds.split(seed, val, test)
        for name in ("train", "val", "test"):
            getattr(out, name).extend((ds, c) for c in parts[name] if c.labels is not None)
    return out


def check_organs_annotated(organs: Sequence[str], datasets: Sequence[Dataset]) -> None:
    for organ in organs:
        if not any(ds.annotates(organ) for ds in datasets):
            names = ", ".join(ds.name for ds in datasets)
            raise TrainingError(f"no dataset annotates {organ!r} (datasets: {names}); it cannot be learned from them")


def prepare(pairs: Sequence[tuple[Dataset, Case]], organs: Sequence[str], size: Sequence[int], spacing: Sequence[float] | None, cache: Path | None, progress: Callable[[int, int], None] | None = None) -> list[CaseSlices]:
    out: list[CaseSlices] = []
    for i, (ds, case) in enumerate(pairs, start=1):
        out.extend(load_cases(ds, [case], list(organs), tuple(size), tuple(spacing) if spacing else None, cache))
        if progress:
            progress(i, len(pairs))
    return out


def default_model_id(organs: Sequence[str], architecture: str) -> str:
    return f"{organs[0]}-{architecture}" if len(organs) == 1 else f"multiclass-{architecture}"


def train_model(
    organs: Sequence[str],
    architecture: str,
    datasets: Sequence[Dataset],
    out: str | Path | None = None,
    model_id: str | None = None,
    variant: str = "tiny",
    input_size: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    config: TrainConfig = TrainConfig(),
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    run_dir: str | Path | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
    prepare_progress: Callable[[int, int], None] | None = None,
    note: str | None = None,
    license: str = "apache-2.0",
    **overrides: Any,
) -> tuple[Path, TrainResult]:
    """Train one model on ``datasets`` and save the best epoch (by validation loss) as a zoo model.

    ``input_size`` and ``spacing`` (in-plane x, y mm) default to the variant's: every training
    slice is resampled to ``spacing`` and centre-cropped to ``input_size``, and the card records
    both and the range of grids the training scans came on. Returns the model folder and the
    training result. ``run_dir`` keeps the resumable checkpoint.
    """
    organs = list(organs)
    if not datasets:
        raise TrainingError("no dataset given (--data DIR)")
    check_organs_annotated(organs, datasets)
    model_id = check_model_id(model_id or default_model_id(organs, architecture), "--name", TrainingError)
    out = Path(out) if out else zoo_home() / "models" / model_id
    run_dir = Path(run_dir) if run_dir else zoo_home() / "runs" / model_id
    cfg = make_config(architecture, organs, variant, input_size=list(input_size) if input_size else None, spacing=list(spacing) if spacing else None, **overrides)

    splits = split_datasets(datasets, split_seed, val_fraction, test_fraction)
    train_pairs = [p for p in splits.train if any(p[0].annotates(o) for o in organs)]
    val_pairs = [p for p in splits.val if any(p[0].annotates(o) for o in organs)]
    if not train_pairs or not val_pairs:
        raise TrainingError("the datasets give no training or no validation patients for these organs; add cases")
    cache = slice_cache_dir()
    both = prepare(train_pairs + val_pairs, organs, cfg.input_size, cfg.spacing, cache, prepare_progress)
    train_cases, val_cases = both[: len(train_pairs)], both[len(train_pairs) :]

    torch.manual_seed(config.seed)
    model = build_model(cfg)
    if not resume and (run_dir / "checkpoint.safetensors").exists():
        (run_dir / "checkpoint.safetensors").unlink()
    trainer = Trainer(model, train_cases, val_cases, organs, config, run_dir / "checkpoint.safetensors", reporter)
    started = time.time()
    result = trainer.fit(resume=resume)
    model.load_state_dict(result.best_state)

    metrics = {"val": val_metrics(result)}
    largest = choose_largest_component(model, val_cases, organs)
    card = card_for(
        model.config,
        model_id,
        license=license,
        training=training_record(datasets, train_pairs, val_pairs, config, result, split_seed, val_fraction, test_fraction, note, time.time() - started),
        metrics=metrics,
        postprocess={"largest_component": largest} if largest else {},
        trained_on=InputRange.of_grids(c.grid for c in both if c.grid is not None),
    )
    return save_model(model.cpu(), out, card), result


def training_record(
    datasets: Sequence[Dataset],
    train_pairs: Sequence[tuple[Dataset, Case]],
    val_pairs: Sequence[tuple[Dataset, Case]],
    config: TrainConfig,
    result: TrainResult,
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
    note: str | None,
    seconds: float,
) -> dict[str, Any]:
    """What a card records about training: data (case ids hashed), split, schedule, outcome."""
    rec: dict[str, Any] = {
        **datasets_record(datasets, train_pairs, val_pairs),
        "cases_train": len(train_pairs),
        "cases_val": len(val_pairs),
        "split": {"seed": split_seed, "val": val_fraction, "test": test_fraction},
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "stopped": result.stopped,
        "steps_per_epoch": config.steps_per_epoch,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "seed": config.seed,
        "augment": config.augment,
        "device": result.device,
        "seconds": round(seconds, 1),
    }
    if note:
        rec["note"] = note
    return rec


@torch.no_grad()
def choose_largest_component(model: torch.nn.Module, val_cases: Sequence[CaseSlices], organs: Sequence[str], batch: int = 16) -> list[str]:
    """Organs for which keeping the largest 3D component does not lower validation Dice
    (nnU-Net's rule), judged on the validation patients' prepared slices."""
    from ..inference import keep_largest_component
    from ..metrics import dice

    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    gains: dict[str, list[float]] = {o: [] for o in organs}
    for case in val_cases:
        chunks = []
        for z0 in range(0, case.image.shape[0], batch):
            x = torch.from_numpy(case.image[z0 : z0 + batch].astype(np.float32))[:, None].to(device)
            chunks.append((model(x) > 0).cpu().numpy())
        pred = np.concatenate(chunks)
        for c, organ in enumerate(organs):
            if case.annotated[c]:
                ref = case.masks[:, c] > 0
                gains[organ].append(dice(keep_largest_component(pred[:, c]), ref) - dice(pred[:, c], ref))
    return [o for o in organs if gains[o] and float(np.mean(gains[o])) >= 0.0]


#: What a card's case hashes reveal, said on the card itself.
CASE_HASH_NOTE = (
    "sha256 of a per-dataset salt (derived from the data files) and the case id: whoever holds the same "
    "dataset can tell which of its cases trained this model; the ids cannot be recovered without the data"
)


def datasets_record(datasets: Sequence[Dataset], train_pairs: Sequence[tuple[Dataset, Case]], val_pairs: Sequence[tuple[Dataset, Case]]) -> dict[str, Any]:
    """Which cases of which datasets trained and validated a model (ids hashed), for its card."""
    return {
        "case_hashes": CASE_HASH_NOTE,
        "dataset_names": [ds.name for ds in datasets],
        "datasets": [
            {
                "name": ds.name,
                "cases_train": [ds.case_hash(c) for d, c in train_pairs if d is ds],
                "cases_val": [ds.case_hash(c) for d, c in val_pairs if d is ds],
            }
            for ds in datasets
        ],
    }


def val_metrics(result: TrainResult) -> dict[str, dict[str, float]]:
    """Card metrics of the best epoch: each organ's validation Dice, mean Dice and loss."""
    best = next((h for h in result.history if h["epoch"] == result.best_epoch), result.history[-1])
    return {**{o: {"dice": d} for o, d in best["val_dice"].items()}, "mean": {"dice": best["val_dice_mean"], "loss": result.best_val_loss}}


def report_to_metrics(report: Report) -> dict[str, dict[str, float]]:
    """Card metrics from an evaluation report: per organ and mean, each metric's mean."""
    out: dict[str, dict[str, float]] = {}
    for organ in report.organs:
        out[organ] = {m: st.mean for m, st in report.organ_stats(organ).items()}
    out["mean"] = {m: st.mean for m, st in report.mean_stats().items()}
    return out
