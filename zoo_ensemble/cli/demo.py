"""``zoo demo``: the main job on the built-in default data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .app import app
from .console import console, progress


def comparison_tables(reports: dict) -> tuple[Table, Table]:
    """The paper's "average over the labels" table, and per-organ Dice by method."""
    means = Table(title="average scores over the labels (test patients, mean ± std)", title_justify="left")
    for col in ("Method", "Dice", "Precision", "Recall", "HD95 (mm)"):
        means.add_column(col, justify="left" if col == "Method" else "right")
    for method, report in reports.items():
        st = report.mean_stats()
        means.add_row(method, *(f"{st[m].mean:.3f}±{st[m].std:.3f}" for m in ("dice", "precision", "recall")), f"{st['hd95'].mean:.2f}±{st['hd95'].std:.2f}")
    organs = list(next(iter(reports.values())).organs)
    per_organ = Table(title="Dice per organ", title_justify="left")
    per_organ.add_column("Method")
    for o in organs:
        per_organ.add_column(o, justify="right")
    for method, report in reports.items():
        per_organ.add_row(method, *(f"{report.organ_stats(o)['dice'].mean:.3f}" for o in organs))
    return means, per_organ


@app.command("demo")
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Working folder for the cohort (default: <zoo home>/demo).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same table.")] = 0,
    quick: Annotated[bool, typer.Option("--quick", help="A smaller cohort and one short epoch (a smoke test, not a result).")] = False,
) -> None:
    """The zoo's own organ models -> four ensembles on a cohort they never saw -> comparison table (CPU, no downloads)."""
    from ..demo import DemoSettings, run_demo
    from ..paths import zoo_home
    from .train_progress import RichReporter

    settings = DemoSettings(seed=seed)
    if quick:
        settings = DemoSettings(cases=4, seed=seed, epochs=1, steps=2, val_fraction=0.25, test_fraction=0.25)
    started = time.monotonic()
    tasks: dict[str, int] = {}
    with progress() as bar:

        def step(name: str, i: int, n: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=n)
            bar.update(tasks[name], completed=i)

        result = run_demo(out, settings, step, lambda title: RichReporter(title))
    means, per_organ = comparison_tables(result.reports)
    console.print(f"members (the best shipped model per organ): {', '.join(result.members)}", highlight=False)
    console.print(means)
    console.print(per_organ)
    minutes = (time.monotonic() - started) / 60
    best = f"demo-ensemble-{result.best()}"
    console.print(
        f"done in {minutes:.1f} min. The ensembles demo-ensemble-* are in the local zoo ({zoo_home() / 'models'}). "
        f"Next, the best one on a real chest CT:\n  zoo data sample --out sample\n  zoo predict {best} sample/ct.nii.gz -o labels.nii.gz",
        highlight=False, markup=False,
    )
