"""``zoo experiment``: the paper's experiments (baseline, exp1 to exp5) in one command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ZooError
from .app import app
from .console import console, err_console

experiment_app = typer.Typer(help="Reproduce the paper's experiments (baseline, exp1 to exp5).", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")

Names = Annotated[list[str] | None, typer.Argument(help="Experiments: all (default), baseline, exp1 ... exp5.")]
PresetOpt = Annotated[str, typer.Option("--preset", help="cpu (phantoms, 2 CPU cores, < 30 min), paper (the paper's settings, GPU), or a preset YAML file.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Working folder of the run (default: <zoo home>/experiments/<preset>).")]
DataOpt = Annotated[list[str] | None, typer.Option("--data", help="SOURCE=DIR: use this dataset as source A (StructSeg-like) or B (SegTHOR-like) instead of phantoms.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Folder for the report (default: <out>/report).")]
DefsOpt = Annotated[Path | None, typer.Option("--experiments", help="A YAML file of experiment definitions instead of the built-in ones.")]


def _data(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in pairs or []:
        src, sep, path = item.partition("=")
        if not sep or not src or not path:
            raise ZooError(f"--data {item!r}: write SOURCE=DIR, e.g. --data A=/data/StructSeg")
        out[src.strip()] = path.strip()
    return out


def _load(names: list[str] | None, preset: str, defs: Path | None):
    from ..experiments.settings import load_experiments, load_preset, select_experiments

    p = load_preset(preset)
    return p, select_experiments(names or ["all"], load_experiments(defs))


def _out(out: Path | None, preset_name: str) -> Path:
    from ..paths import zoo_home

    return out or zoo_home() / "experiments" / preset_name


def _command(names: list[str] | None, preset: str, out: Path | None, data: list[str] | None, report: Path | None, defs: Path | None) -> str:
    parts = ["zoo experiment run", *(names or ["all"]), f"--preset {preset}"]
    parts += [f"--data {d}" for d in data or []]
    parts += [f"--out {out}"] if out else []
    parts += [f"--experiments {defs}"] if defs else []
    parts += [f"--report {report}"] if report else []
    return " ".join(parts)


@experiment_app.command("list")
def list_(defs: DefsOpt = None) -> None:
    """The experiments and what each composes."""
    from ..experiments.settings import load_experiments

    table = Table(title="experiments", title_justify="left")
    for col in ("name", "paper table", "title", "entries"):
        table.add_column(col)
    for exp in load_experiments(defs).values():
        table.add_row(exp.name, exp.table, exp.title, ", ".join(e.name for e in exp.entries))
    console.print(table)


@experiment_app.command("plan")
def plan(names: Names = None, preset: PresetOpt = "cpu", data: DataOpt = None, defs: DefsOpt = None) -> None:
    """What a run would train and compose, without running anything."""
    from ..data.dataset import open_dataset
    from ..data.phantom import SOURCES
    from ..experiments.plan import (
        check_experiments,
        multiclass_jobs,
        pool_jobs,
        source_jobs,
    )

    p, exps = _load(names, preset, defs)
    given = _data(data)
    annotated = {s: set(open_dataset(d).organs) for s, d in given.items()} if given else {s: set(SOURCES[s].organs) for s, n in p.phantom_cases.items() if n > 0}
    check_experiments(exps, p, list(annotated))
    jobs = pool_jobs(p, annotated) + multiclass_jobs(exps, p, annotated)
    jobs += source_jobs(exps, p, {}, annotated)
    table = Table(title=f"networks to train (preset {p.name})", title_justify="left")
    for col in ("id", "kind", "organs", "architecture", "trained on"):
        table.add_column(col)
    for j in jobs:
        table.add_row(j.model_id, j.kind, ", ".join(j.organs), j.architecture, ", ".join(j.sources))
    console.print(table)
    for exp in exps:
        console.print(f"[b]{exp.name}[/b] (Table {exp.table}): {', '.join(e.name for e in exp.entries)}" + (f"; ensembles on {exp.train_fraction:.0%} of the training patients" if exp.train_fraction < 1 else ""))


@experiment_app.command("run")
def run(
    names: Names = None, preset: PresetOpt = "cpu", out: OutOpt = None, data: DataOpt = None, report: ReportOpt = None, defs: DefsOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=0, max=64, help="Processes training side by side, one torch thread each (0: one per CPU, at most 2). The numbers do not depend on it.")] = 0,
) -> None:
    """Train what the experiments need, compose and evaluate their ensembles, write the report.

    An interrupted run continues where it stopped when started again with the same arguments.
    """
    from ..experiments.report import ReportInputs, write_report
    from ..experiments.runner import Runner
    from ..workers import default_workers
    from .train_progress import RichReporter

    p, exps = _load(names, preset, defs)
    folder = _out(out, p.name)
    # side by side on CPU cores; a GPU takes one training at a time unless asked
    n_workers = default_workers(workers) if workers or p.device == "cpu" else 1
    started = time.monotonic()
    runner = Runner(p, exps, folder, _data(data), say=lambda m: err_console.print(f"[dim]{time.monotonic() - started:7.0f}s[/] {m}", highlight=False), reporter_for=RichReporter, workers=n_workers)
    result = runner.run()
    if not runner.world.is_main:  # under torchrun rank 0 writes the report
        return
    path = write_report(ReportInputs(p, exps, result.results, _command(names, preset, out, data, report, defs), runner.datasets, n_workers), result.workspace, report or folder / "report")
    _print_means(exps, result.results)
    console.print(f"done in {(time.monotonic() - started) / 60:.1f} min ({len(result.trained)} networks trained, {len(result.reused)} reused); report: {path}")


@experiment_app.command("report")
def report_(
    names: Names = None, preset: PresetOpt = "cpu", out: OutOpt = None, data: DataOpt = None, report: ReportOpt = None, defs: DefsOpt = None,
) -> None:
    """Rewrite the report from a run's finished results (nothing is trained)."""
    from ..experiments.report import ReportInputs, write_report
    from ..experiments.runner import collect_results, open_sources
    from ..experiments.workspace import Workspace

    p, exps = _load(names, preset, defs)
    ws = Workspace(_out(out, p.name))
    if not (ws.root / "run.json").exists():
        raise ZooError(f"{ws.root}: no experiment run there (run zoo experiment run first)")
    given = _data(data)
    ws.open(p, {k: str(Path(v).resolve()) for k, v in given.items()})
    results = collect_results(ws, exps)
    sources = open_sources(p, ws, given or None, lambda _m: None)
    path = write_report(ReportInputs(p, exps, results, _command(names, preset, out, data, report, defs), sources), ws, report or ws.root / "report")
    _print_means(exps, results)
    console.print(f"report: {path}")


def _print_means(exps, results) -> None:
    table = Table(title="mean over the labels (test patients)", title_justify="left")
    # the paper's HD95 was computed in voxels (its code passed no spacing): it sits beside ours in voxels
    for col in ("experiment", "method", "Dice", "HD95 (mm)", "HD95 (vox)", "paper Dice", "paper HD95 (vox)"):
        table.add_column(col, justify="left" if col in ("experiment", "method") else "right")
    for exp in exps:
        for e in exp.entries:
            r = results.get(exp.name, {}).get(e.slug)
            if r is None:
                continue
            m = r["report"]["mean"]
            paper = exp.paper.get(e.name)
            vox = m.get("hd95_voxels", {}).get("mean")
            table.add_row(
                exp.name, e.name, f"{m['dice']['mean']:.3f}", f"{m['hd95']['mean']:.2f}", "-" if vox is None else f"{vox:.2f}",
                f"{paper[0]:.3f}" if paper else "-", f"{paper[3]:.2f}" if paper else "-",
            )
    console.print(table)
