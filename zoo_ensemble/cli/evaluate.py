"""``zoo evaluate``: score a model on a dataset split, or label maps against references."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ZooError
from . import options as opt
from .app import app
from .console import console, progress, report_table, safe


@app.command("evaluate")
def evaluate(
    model: Annotated[str | None, typer.Argument(help="Model id, local-dir:PATH or model folder (with --data).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset folder to evaluate MODEL on.")] = None,
    split: Annotated[str, typer.Option("--split", help="train, val, test or all.")] = "test",
    seed: Annotated[int | None, typer.Option("--seed", help="Split seed (default: the one the model was trained with).")] = None,
    pred: Annotated[Path | None, typer.Option("--pred", help="Predicted label map, or a folder of them.")] = None,
    gt: Annotated[Path | None, typer.Option("--gt", help="Reference label map, or a folder with matching names.")] = None,
    labels: Annotated[str | None, typer.Option("--labels", help="Label map of the references: a name (structseg, segthor, totalsegmentator, zoo) or 1=heart,2=aorta.")] = None,
    pred_labels: Annotated[str | None, typer.Option("--pred-labels", help="Label map of the predictions (default: same as --labels).")] = None,
    organs: Annotated[str | None, typer.Option("--organs", help="Comma-separated organs to score (default: all in both maps).")] = None,
    batch_size: Annotated[int, typer.Option(help="Slices per forward pass (with MODEL).")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (with MODEL).")] = "auto",
    precision: opt.Precision = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for evaluation.json and evaluation.csv.")] = Path("zoo-evaluation"),
) -> None:
    """Dice, precision, recall and HD95 (mm) per organ, as a table and as JSON and CSV.

    Either MODEL --data DIR [--split test], or --pred PRED --gt GT --labels MAP.
    """
    from ..outputs import check_output_folder

    check_output_folder(out, "zoo evaluation folder", owned=(out / "evaluation.json").is_file(), inputs=[pred, gt, data])
    if model is not None:
        report, title = _evaluate_model(model, data, split, seed, labels, organs, batch_size, device, precision)
    else:
        report, title = _evaluate_files(pred, gt, labels, pred_labels, organs)
    console.print(report_table(report, title=title))
    if report.extra.get("contested"):
        console.print(f"{report.extra['contested']} voxels were claimed by more than one organ (the most confident won)")
    j, c = report.write(out)
    console.print(f"wrote {safe(j)} and {safe(c)}")


def _evaluate_model(
    ref: str, data: Path | None, split: str, seed: int | None, labels: str | None, organs: str | None, batch_size: int, device: str,
    precision: str,
):
    from ..data.dataset import open_dataset
    from ..evaluation import evaluate_model
    from ..zoo.model import ZooModel

    if data is None:
        raise ZooError("evaluating a model needs --data DIR")
    model = ZooModel.from_pretrained(ref)
    dataset = open_dataset(data, label_map=labels)
    if seed is None:
        seed = int((model.card.training.get("split") or {}).get("seed", 0))
    predictor = model.predictor(device, precision, batch_size, organs)
    with progress() as bar:
        task = bar.add_task(f"evaluate {model.model_id}", total=None)
        report = evaluate_model(predictor, dataset, split, seed, progress=lambda i, n: bar.update(task, completed=i, total=n))
    report.extra["model"] = model.model_id
    return report, f"{model.model_id} on {dataset.name} ({split})"


def _evaluate_files(pred: Path | None, gt: Path | None, labels: str | None, pred_labels: str | None, organs: str | None):
    from ..evaluation import evaluate_label_files
    from ..labelmaps import get_label_map
    from ..organs import parse_organs

    if pred is None or gt is None:
        raise ZooError("give MODEL --data DIR, or both --pred and --gt (label map files or folders)")
    report = evaluate_label_files(
        pred, gt, get_label_map(labels or "zoo"), get_label_map(pred_labels) if pred_labels else None,
        parse_organs(organs) if organs else None,
    )
    return report, f"{pred} vs {gt}"
