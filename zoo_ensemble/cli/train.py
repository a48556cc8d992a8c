"""``zoo train``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ZooError
from . import options as opt
from .app import app
from .console import console, progress_callback, safe


@app.command("train")
def train(
    organ: Annotated[list[str], typer.Option("--organ", help="Organ to segment; repeat for a multiclass model.")],
    data: opt.Data,
    arch: Annotated[str, typer.Option("--arch", help="unet, se_resunet or deeplabv3.")] = "unet",
    variant: Annotated[str, typer.Option(help="Model size: tiny (CPU), small, paper (GPU).")] = "tiny",
    name: opt.Name = None,
    out: opt.Out = None,
    size: Annotated[int | None, typer.Option(help="Crop size in pixels after resampling (default: the variant's: tiny 160, small 256, paper 320).")] = None,
    spacing: Annotated[str | None, typer.Option(help="In-plane pixel spacing X,Y in mm every slice is resampled to (default: the variant's: tiny 2.2,2.2, small 1.4,1.4, paper 1.0,1.0).")] = None,
    # typer declares options as parameters: shared definitions in cli/options.py, own defaults
    epochs: opt.Epochs = 40,
    steps: opt.Steps = 40,
    batch_size: opt.BatchSize = 8,
    lr: opt.Lr = 1e-3,
    minutes: opt.Minutes = None,
    device: opt.Device = "auto",
    precision: opt.TrainPrecision = "auto",
    seed: opt.Seed = 0,
    split_seed: opt.SplitSeed = 0,
    labels: opt.Labels = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Train without augmentation.")] = False,
    workers: Annotated[int, typer.Option(min=0, help="Data-loader worker processes.")] = 0,
    resume: opt.Resume = False,
    force: opt.Force = False,
) -> None:
    """Train a binary (one --organ) or multiclass (several) model and save it as a zoo model."""
    from ..input_range import parse_spacing
    from ..organs import parse_organs
    from ..training.train import TrainRequest, train_model
    from ..training.fit import SplitPlan
    from ..training.trainer import TrainConfig
    from .train_progress import RichReporter

    organs = parse_organs(organ)
    pixel = parse_spacing(spacing, "--spacing", ZooError) if spacing is not None else None
    opt.check_model_out(out, force, data)
    config = TrainConfig(
        epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, lr=lr, max_minutes=minutes,
        seed=seed, device=device, precision=precision, augment=not no_augment, num_workers=workers,
    )
    request = TrainRequest(
        organs=organs, architecture=arch, data=opt.datasets(data, labels), out=out, model_id=name, variant=variant,
        input_size=(size, size) if size else None, spacing=pixel, config=config, split=SplitPlan(seed=split_seed), resume=resume,
        prepare_progress=progress_callback("prepare slices"), reporter=RichReporter(name or "/".join(organs)),
    )
    folder, result = train_model(request)
    console.print(
        f"saved [b]{safe(folder.name)}[/b] to {safe(folder)} (best epoch {result.best_epoch} of {result.epochs_run}, "
        f"val loss {result.best_val_loss:.4f}, {result.stopped})"
    )
