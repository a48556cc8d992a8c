"""``zoo demo``: the main job on the built-in default data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..paths import zoo_home
from . import app
from .console import console, progress, report_table


@app.command("demo")
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Working folder (default: <zoo home>/demo).")] = None,
    cases: Annotated[int, typer.Option(help="Synthetic patients to generate.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Generate a synthetic cohort, segment it and print the evaluation table (CPU, no downloads)."""
    from ..demo import run_demo

    out = out or zoo_home() / "demo"
    tasks: dict[str, int] = {}
    with progress() as bar:

        def step(name: str, i: int, n: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=n)
            bar.update(tasks[name], completed=i)

        report = run_demo(out, cases, seed, step)
    console.print(report_table(report, title=f"Threshold lung baseline on {report.extra['dataset']}"))
    console.print(f"data, predictions and evaluation.json/csv are in {out}")
