"""``zoo evaluate``: score label maps against references."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ZooError
from . import app
from .console import console, report_table


@app.command("evaluate")
def evaluate(
    pred: Annotated[Path | None, typer.Option("--pred", help="Predicted label map, or a folder of them.")] = None,
    gt: Annotated[Path | None, typer.Option("--gt", help="Reference label map, or a folder with matching names.")] = None,
    labels: Annotated[str, typer.Option("--labels", help="Label map of the references: a name (structseg, segthor, totalsegmentator, zoo) or 1=heart,2=aorta.")] = "zoo",
    pred_labels: Annotated[str | None, typer.Option("--pred-labels", help="Label map of the predictions (default: same as --labels).")] = None,
    organs: Annotated[str | None, typer.Option("--organs", help="Comma-separated organs to score (default: all in both maps).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for evaluation.json and evaluation.csv.")] = Path("zoo-evaluation"),
) -> None:
    """Dice, precision, recall and HD95 (mm) per organ, as a table and as JSON and CSV."""
    from ..evaluation import evaluate_label_files
    from ..labelmaps import get_label_map
    from ..organs import parse_organs

    if pred is None or gt is None:
        raise ZooError("give both --pred and --gt (label map files or folders)")
    report = evaluate_label_files(
        pred,
        gt,
        get_label_map(labels),
        get_label_map(pred_labels) if pred_labels else None,
        parse_organs(organs) if organs else None,
    )
    console.print(report_table(report, title=f"{pred} vs {gt}"))
    j, c = report.write(out)
    console.print(f"wrote {j} and {c}")
