"""Options several commands share, declared once (help text, bounds)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Data = Annotated[list[Path], typer.Option("--data", help="Dataset folder; repeat to pool datasets.")]
OptionalData = Annotated[list[Path] | None, typer.Option("--data", help="Dataset folder(s) to train and test on; repeat to pool datasets.")]
Name = Annotated[str | None, typer.Option("--name", help="Model id (letters, digits, '.', '_', '-').")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Model folder (default: the local zoo).")]
Epochs = Annotated[int, typer.Option(min=1, max=100000, help="Maximum epochs.")]
Steps = Annotated[int, typer.Option(min=1, max=1000000, help="Batches per epoch.")]
BatchSize = Annotated[int, typer.Option(min=1, max=4096, help="Slices per batch.")]
Lr = Annotated[float, typer.Option(help="Initial learning rate (Adam).")]
Minutes = Annotated[float | None, typer.Option(help="Wall-clock budget; stops after the epoch that crosses it.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option("--precision", help="auto (GPU: fp16 autocast; CPU: fp32), fp32, bf16 (where the CPU or GPU has bf16 arithmetic: faster, organs' Dice may move by ~0.005) or fp16 (GPU).")]
TrainPrecision = Annotated[str, typer.Option("--precision", help="auto (CUDA: fp16 mixed precision; CPU: fp32), bf16 (where the hardware has it), fp16 (CUDA) or fp32.")]
Seed = Annotated[int, typer.Option(help="Seed for initialisation, sampling and augmentation.")]
SplitSeed = Annotated[int, typer.Option(help="Seed of the patient-level train/val/test split.")]
Labels = Annotated[str | None, typer.Option("--labels", help="Label map override for the datasets.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the interrupted training run of this model id.")]
Force = Annotated[bool, typer.Option("--force", help="Replace an --out folder that is not a zoo model folder.")]


def datasets(paths: list[Path] | None, labels: str | None) -> list:
    from ..data.dataset import open_dataset

    return [open_dataset(p, label_map=labels) for p in paths or []]


def check_model_out(out: Path | None, force: bool, data: list[Path] | None) -> None:
    """Refuse, before any work, an ``--out`` folder that is a user's (unless ``--force``)."""
    from ..outputs import check_output_folder, is_model_folder

    if out is not None:
        check_output_folder(out, "zoo model folder", owned=is_model_folder(out), force=force, inputs=data or [])
