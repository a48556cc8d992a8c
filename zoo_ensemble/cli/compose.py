"""``zoo compose``: chosen zoo models become one multi-organ ensemble."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from . import options as opt
from .app import app
from .console import console, progress_callback, report_table, safe


@app.command("compose")
def compose(
    method: Annotated[str, typer.Option("--method", help="argmax, logits_conv, meta_unet or layer_fusion.")],
    organs: Annotated[str, typer.Option("--organs", help="'all' (every organ the members cover) or organ,organ,...")] = "all",
    models: Annotated[str | None, typer.Option("--models", help="Member ids, comma-separated (default: the best binary model per organ).")] = None,
    data: opt.OptionalData = None,
    name: Annotated[str | None, typer.Option("--name", help="Id of the ensemble (default ensemble-<method>).")] = None,
    out: opt.Out = None,
    push: Annotated[str | None, typer.Option("--push", help="Publish it to this Hub repo (org/name).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse when training or test cases overlap the members' training cases.")] = False,
    fresh_cases: Annotated[bool, typer.Option("--fresh-cases", help="Train the ensemble only on cases no member has seen.")] = False,
    # typer declares options as parameters: shared definitions in cli/options.py, own defaults
    epochs: opt.Epochs = 30,
    steps: opt.Steps = 30,
    batch_size: opt.BatchSize = 8,
    lr: opt.Lr = 1e-3,
    minutes: opt.Minutes = None,
    device: opt.Device = "auto",
    precision: opt.TrainPrecision = "auto",
    seed: opt.Seed = 0,
    split_seed: opt.SplitSeed = 0,
    labels: opt.Labels = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Augment ensemble training slices (the paper did not).")] = False,
    variant: Annotated[str, typer.Option(help="Meta U-Net size: tiny, small or paper.")] = "tiny",
    init: Annotated[str, typer.Option("--init", help=(
        "How the learned combiner starts. members (ours): logits_conv and layer_fusion start as the members' average "
        "and the meta U-Net is residual on it, so training starts at the members' prediction; paper: the paper's "
        "combiners (PyTorch's default initialisation, a plain meta U-Net). The card records which."))] = "members",
    resume: opt.Resume = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run the members at every training step instead of reading their outputs, computed once, from the zoo home.")] = False,
    train_fraction: Annotated[float, typer.Option("--train-fraction", help="Train on this share of each dataset's training patients (data scarcity).")] = 1.0,
    force: opt.Force = False,
) -> None:
    """Build, train (when the method learns), evaluate and save an ensemble of zoo models."""
    from ..compose import ComposeRequest
    from ..compose import compose as run
    from ..ensembles import init_options
    from ..training.fit import SplitPlan
    from ..training.trainer import TrainConfig
    from .train_progress import RichReporter

    opt.check_model_out(out, force, data)
    request = ComposeRequest(
        method=method, organs=organs, models=models.split(",") if models else None, data=opt.datasets(data, labels),
        name=name, out=out, push=push, strict=strict, fresh_cases=fresh_cases, resume=resume, cache=not no_cache, warn_leakage=False,
        config=TrainConfig(epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, lr=lr, max_minutes=minutes, seed=seed, device=device, precision=precision, augment=augment),
        split=SplitPlan(seed=split_seed, train_fraction=train_fraction),
        options={**({"variant": variant} if method == "meta_unet" else {}), **init_options(method, init)},
        reporter=RichReporter(name or method), evaluate_progress=progress_callback("evaluate on the test split"),
    )
    _show(run(request), method, push)


def _show(result, method: str, push: str | None) -> None:
    members = Table(title="members", title_justify="left")
    for col in ("id", "organs", "source", "why"):
        members.add_column(col)
    for m in result.members:
        members.add_row(*map(safe, (m.model_id, ", ".join(m.organs), m.source(), result.reasons.get(m.model_id, ""))))
    console.print(members)
    if result.report is not None:
        console.print(report_table(result.report, title=f"{safe(result.folder.name)} ({method}) on the test split"))
        console.print(f"{result.report.extra.get('contested', 0)} voxels were claimed by more than one organ (the most confident won)")
    for line in result.notes:
        console.print(safe(line))
    for line in result.leakage:
        console.print(f"[yellow]leakage:[/] {safe(line)}")
    console.print(f"saved [b]{safe(result.folder.name)}[/b] to {safe(result.folder)}" + (f" and pushed it to {safe(push)}" if push else ""))
