"""Train a binary or multiclass organ model from datasets and save it as a zoo model folder."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..architectures import build_model, make_config
from ..data.dataset import Case, Dataset
from ..data.slices import CaseSlices
from ..distributed import current
from ..errors import TrainingError
from ..evaluation import Report
from ..inference import keep_largest_component
from ..metrics import dice
from ..paths import zoo_home
from ..zoo.cards import card_for, check_model_id
from ..zoo.folder import save_model
from .fit import SplitPlan, TrainingRun, check_organs_annotated, fit
from .trainer import Reporter, TrainConfig, TrainResult


@dataclass
class TrainRequest:
    """What ``zoo train`` asks for: organs, architecture and size, data, where the model goes,
    the training schedule and the patient split. ``input_size`` and ``spacing`` (in-plane x, y
    mm) default to the variant's; ``overrides`` replace other config fields (e.g. ``widths``)."""

    organs: Sequence[str]
    architecture: str
    data: Sequence[Dataset]
    out: str | Path | None = None
    model_id: str | None = None
    variant: str = "tiny"
    input_size: Sequence[int] | None = None
    spacing: Sequence[float] | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    split: SplitPlan = field(default_factory=SplitPlan)
    run_dir: str | Path | None = None
    resume: bool = False
    reporter: Reporter | None = None
    prepare_progress: Callable[[int, int], None] | None = None
    note: str | None = None
    license: str = "apache-2.0"
    overrides: dict[str, Any] = field(default_factory=dict)


def default_model_id(organs: Sequence[str], architecture: str) -> str:
    return f"{organs[0]}-{architecture}" if len(organs) == 1 else f"multiclass-{architecture}"


def train_model(request: TrainRequest) -> tuple[Path, TrainResult]:
    """Train one model and save its best epoch (by validation loss) as a zoo model folder.

    Every slice is resampled to the model's spacing and centre-cropped to its input size; the
    card records both, the grids the training scans came on, the data (case ids hashed) and the
    validation numbers. Returns the folder and the training result.
    """
    r = request
    organs = list(r.organs)
    if not r.data:
        raise TrainingError("no dataset given (--data DIR)")
    check_organs_annotated(organs, r.data)
    model_id = check_model_id(r.model_id or default_model_id(organs, r.architecture), "--name", TrainingError)
    geometry = {"input_size": list(r.input_size) if r.input_size else None, "spacing": list(r.spacing) if r.spacing else None}
    cfg = make_config(r.architecture, organs, r.variant, **geometry, **r.overrides)
    splits = r.split.split(r.data, organs)
    torch.manual_seed(r.config.seed)
    model = build_model(cfg)
    run = TrainingRun(r.config, Path(r.run_dir) if r.run_dir else zoo_home() / "runs" / model_id, r.resume, r.reporter, r.prepare_progress)
    started = time.time()
    fitted = fit(model, organs, splits, (cfg.input_size, cfg.spacing), run)
    out = Path(r.out) if r.out else zoo_home() / "models" / model_id
    if not current().is_main:  # under torchrun rank 0 chooses the post-processing and writes the folder
        return out, fitted.result
    largest = choose_largest_component(model, fitted.val_cases, organs)
    card = card_for(
        cfg, model_id, license=r.license, metrics={"val": val_metrics(fitted.result)},
        training=training_record(r.data, splits.train, splits.val, r.config, fitted.result, r.split, r.note, time.time() - started),
        postprocess={"largest_component": largest} if largest else {}, trained_on=fitted.trained_on,
    )
    return save_model(model.cpu(), out, card), fitted.result


def training_record(
    datasets: Sequence[Dataset],
    train_pairs: Sequence[tuple[Dataset, Case]],
    val_pairs: Sequence[tuple[Dataset, Case]],
    config: TrainConfig,
    result: TrainResult,
    split: SplitPlan,
    note: str | None,
    seconds: float,
) -> dict[str, Any]:
    """What a card records about training: data (case ids hashed), split, schedule, outcome."""
    rec: dict[str, Any] = {
        **datasets_record(datasets, train_pairs, val_pairs),
        "cases_train": len(train_pairs),
        "cases_val": len(val_pairs),
        "split": {"seed": split.seed, "val": split.val, "test": split.test},
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
