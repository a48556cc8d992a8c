"""``zoo import``: another framework's trained model into the zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import options as opt
from .app import app
from .console import console, safe


@app.command("import")
def import_(
    framework: Annotated[str, typer.Argument(help="The framework the model comes from: nnunet (plugins add others).")],
    folder: Annotated[Path, typer.Argument(help="Its trained-model folder (nnU-Net v2: Trainer__Plans__configuration, with plans.json, dataset.json, fold_N/).")],
    organs: Annotated[str, typer.Option("--organs", help="Which of its labels are which organs: heart=3,lung_left=10+11 (values or label names), or totalsegmentator.")],
    folds: Annotated[str | None, typer.Option("--folds", help="Folds to average: 0,1,... or all (default: every fold found).")] = None,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="final, best or latest.")] = "final",
    name: opt.Name = None,
    out: opt.Out = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Read checkpoints that also hold objects beyond tensors (paths, a trainer's own classes): they are read as inert stand-ins, still without running code from the file. Only for models you trust.")] = False,
    no_mirroring: Annotated[bool, typer.Option("--no-mirroring", help="Predict without nnU-Net's test-time mirroring (about 8x faster for a 3D model).")] = False,
    license: Annotated[str, typer.Option("--license", help="The model's licence, as its card will say.")] = "other",
    force: opt.Force = False,
) -> None:
    """Import another framework's trained model as a zoo model (weights in safetensors; the
    checkpoint is read once, here, by torch's weights-only unpickler, and never again)."""
    from ..zoo.importing import ImportRequest, import_model

    request = ImportRequest(
        framework, folder, organs, name=name, out=out, folds=folds, checkpoint=checkpoint, trust_pickle=trust_pickle,
        mirroring=not no_mirroring, license=license, force=force,
    )
    model = import_model(request)
    console.print(f"imported [b]{safe(model.model_id)}[/b] ({', '.join(model.organs)}) to {safe(model.folder)}")
