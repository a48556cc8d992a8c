"""``zoo compose``: chosen zoo models become one multi-organ ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .app import app
from .console import console, progress_callback, report_table, safe


@app.command("compose")
def compose(
    method: Annotated[str, typer.Option("--method", help="argmax, logits_conv, meta_unet or layer_fusion.")],
    organs: Annotated[str, typer.Option("--organs", help="'all' (every organ the members cover) or organ,organ,...")] = "all",
    models: Annotated[str | None, typer.Option("--models", help="Member ids, comma-separated (default: the best binary model per organ).")] = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="Dataset folder(s) to train and test the ensemble on.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Id of the ensemble (default ensemble-<method>).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to save it in (default: the local zoo).")] = None,
    push: Annotated[str | None, typer.Option("--push", help="Publish it to this Hub repo (org/name).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse when training or test cases overlap the members' training cases.")] = False,
    fresh_cases: Annotated[bool, typer.Option("--fresh-cases", help="Train the ensemble only on cases no member has seen.")] = False,
    epochs: Annotated[int, typer.Option(min=1, max=100000, help="Maximum epochs (learned methods).")] = 30,
    steps: Annotated[int, typer.Option(min=1, max=1000000, help="Batches per epoch.")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Slices per batch.")] = 8,
    lr: Annotated[float, typer.Option(help="Initial learning rate (Adam).")] = 1e-3,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock training budget.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for initialisation, sampling and augmentation.")] = 0,
    split_seed: Annotated[int, typer.Option(help="Seed of the patient-level split.")] = 0,
    labels: Annotated[str | None, typer.Option("--labels", help="Label map override for the datasets.")] = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Augment ensemble training slices (the paper did not).")] = False,
    variant: Annotated[str, typer.Option(help="Meta U-Net size: tiny, small or paper.")] = "tiny",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted training of this ensemble.")] = False,
    train_fraction: Annotated[float, typer.Option("--train-fraction", help="Train on this share of each dataset's training patients (data scarcity).")] = 1.0,
    force: Annotated[bool, typer.Option("--force", help="Replace an --out folder that is not a zoo model folder.")] = False,
) -> None:
    """Build, train (when the method learns), evaluate and save an ensemble of zoo models."""
    from ..compose import compose as run
    from ..data.dataset import open_dataset
    from ..outputs import check_output_folder, is_model_folder
    from ..training.trainer import TrainConfig
    from .train_progress import RichReporter

    if out is not None:
        check_output_folder(out, "zoo model folder", owned=is_model_folder(out), force=force, inputs=data or [])

    datasets = [open_dataset(p, label_map=labels) for p in (data or [])]
    config = TrainConfig(epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, lr=lr, max_minutes=minutes, seed=seed, device=device, augment=augment)
    options = {"variant": variant} if method == "meta_unet" else None
    result = run(
        method, organs, models.split(",") if models else None, datasets, name, out, config, split_seed,
        strict, fresh_cases, options, RichReporter(name or method), resume, progress_callback("evaluate on the test split"), push, device,
        train_fraction=train_fraction,
    )
    members = Table(title="members", title_justify="left")
    for col in ("id", "organs", "source", "why"):
        members.add_column(col)
    for m in result.members:
        members.add_row(*map(safe, (m.model_id, ", ".join(m.card.organs), m.source, m.reason)))
    console.print(members)
    if result.report is not None:
        console.print(report_table(result.report, title=f"{result.folder.name} ({method}) on the test split"))
        console.print(f"{result.report.extra.get('contested', 0)} voxels were claimed by more than one organ (the most confident won)")
    for line in result.leakage:
        console.print(f"[yellow]leakage:[/] {safe(line)}")
    console.print(f"saved [b]{safe(result.folder.name)}[/b] to {safe(result.folder)}" + (f" and pushed it to {safe(push)}" if push else ""))
