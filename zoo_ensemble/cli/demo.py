"""``zoo demo``: the main job on the built-in default data."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..evaluation import Report
from ..statistics import PairedDifference
from .app import app
from .console import console, progress


def label(key: str) -> str:
    """``best:meta_unet`` -> ``meta_unet [best]``."""
    members, method = key.split(":")
    return f"{method} [{members}]"


def _cell(key: str) -> str:
    return escape(label(key))  # rich would read "[best]" as a style


def comparison_tables(reports: Mapping[str, Report]) -> tuple[Table, Table]:
    """The paper's "average over the labels" table, and per-organ Dice by ensemble."""
    means = Table(title="average scores over the labels (test patients, mean ± std over patients; learned: mean of seeds)", title_justify="left")
    for col in ("Ensemble", "Dice", "Precision", "Recall", "HD95 (mm)"):
        means.add_column(col, justify="left" if col == "Ensemble" else "right")
    for key, report in reports.items():
        st = report.mean_stats()
        means.add_row(_cell(key), *(f"{st[m].mean:.3f}±{st[m].std:.3f}" for m in ("dice", "precision", "recall")), f"{st['hd95'].mean:.2f}±{st['hd95'].std:.2f}")
    organs = list(next(iter(reports.values())).organs)
    per_organ = Table(title="Dice per organ", title_justify="left")
    per_organ.add_column("Ensemble")
    for o in organs:
        per_organ.add_column(o, justify="right")
    for key, report in reports.items():
        per_organ.add_row(_cell(key), *(f"{report.organ_stats(o)['dice'].mean:.3f}" for o in organs))
    return means, per_organ


def differences_table(differences: Mapping[str, PairedDifference], baseline: str) -> Table:
    """Each ensemble's Dice minus the baseline's, paired by patient, with its interval and verdict."""
    table = Table(title=f"Dice against {_cell(baseline)}, paired by patient (95 % bootstrap interval, Wilcoxon p)", title_justify="left")
    for col in ("Ensemble", "Patients", "Difference", "95 % interval", "p", "Verdict"):
        table.add_column(col, justify="left" if col in ("Ensemble", "Verdict") else "right")
    for key, d in differences.items():
        table.add_row(_cell(key), str(d.n), f"{d.mean:+.3f}", f"[{d.low:+.3f}, {d.high:+.3f}]", f"{d.p:.2g}", d.verdict())
    return table


def verdict_line(differences: Mapping[str, PairedDifference], baseline: str) -> str:
    """In words: which ensembles beat the baseline, which lose to it, which are level."""
    parts = []
    for word in ("better", "worse"):
        keys = [label(k) for k, d in differences.items() if d.verdict() == word]
        if keys:
            parts.append(f"{word} than {label(baseline)}: {', '.join(keys)}")
    level = [label(k) for k, d in differences.items() if not d.significant]
    if level:
        parts.append(f"no significant difference: {', '.join(level)}")
    return "; ".join(parts) + "."


@app.command("demo")
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Working folder for the cohort (default: <zoo home>/demo).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same tables.")] = 0,
    quick: Annotated[bool, typer.Option("--quick", help="Five patients, one seed, every method on the best members only (a smoke test, not a result).")] = False,
    layer_fusion: Annotated[bool, typer.Option("--layer-fusion", help="Also layer fusion of the best members, 3 seeds (about 2.5 minutes more on 2 cores).")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per CPU, at most 2).", min=0, max=64)] = 0,
) -> None:
    """The zoo's own organ models -> ensembles on a cohort they never saw -> comparison with intervals (CPU, no downloads)."""
    from ..demo import BASELINE, SET_TITLES, DemoSettings, entry_name, run_demo
    from ..paths import zoo_home

    settings = DemoSettings(seed=seed, workers=workers, layer_fusion=layer_fusion)
    if quick:  # every method once, on the best members
        settings = DemoSettings(cases=5, seed=seed, seeds=1, epochs=1, steps=2, val_fraction=0.2, test_fraction=0.4, sets=("best",), layer_fusion=True, workers=workers)
    started = time.monotonic()
    tasks: dict[str, int] = {}
    with progress() as bar:

        def step(name: str, i: int, n: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=n)
            bar.update(tasks[name], completed=i)

        result = run_demo(out, settings, step)
    for members, ids in result.members.items():
        console.print(f"[{members}] {SET_TITLES[members]}: {', '.join(ids)}", highlight=False, markup=False)
    means, per_organ = comparison_tables(result.reports)
    console.print(means)
    console.print(per_organ)
    differences = result.differences()
    if differences:
        console.print(differences_table(differences, BASELINE))
        console.print(verdict_line(differences, BASELINE), highlight=False, markup=False)
    if "all:argmax" in result.runs:  # learning on the same members: what the combiner adds to their argmax
        own = result.differences(against="all:argmax", members="all")
        console.print(differences_table(own, "all:argmax"))
        console.print(verdict_line(own, "all:argmax"), highlight=False, markup=False)
    minutes = (time.monotonic() - started) / 60
    best = entry_name(result.best())
    console.print(
        f"done in {minutes:.1f} min. The ensembles demo-ensemble-* are in the local zoo ({zoo_home() / 'models'}). "
        f"Next, the one with the highest mean Dice here, on a real chest CT (phantom results need not carry over):\n  zoo data sample --out sample\n  zoo predict {best} sample/ct.nii.gz -o labels.nii.gz",
        highlight=False, markup=False,
    )
