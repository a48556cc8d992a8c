"""A rich progress display for training: epoch, step, loss, validation Dice, learning rate, time left."""

from __future__ import annotations

import math
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .console import err_console


class RichReporter:
    def __init__(self, title: str):
        self.title = title
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val Dice {task.fields[dice]}  lr {task.fields[lr]}"),
            TimeElapsedColumn(),
            TextColumn("left {task.fields[left]}"),
            console=err_console,
        )
        self.task = None
        self.steps = 1
        self.last: dict[str, Any] = {}

    def start(self, epochs: int, steps: int, start_epoch: int) -> None:
        self.steps = steps
        self.progress.start()
        self.task = self.progress.add_task(
            f"{self.title} epoch {start_epoch + 1}/{epochs}", total=epochs * steps, completed=start_epoch * steps,
            loss="-", dice="-", lr="-", left="?",
        )
        self.epochs = epochs

    def step(self, epoch: int, step: int, loss: float, lr: float) -> None:
        self.progress.update(
            self.task, completed=epoch * self.steps + step, description=f"{self.title} epoch {epoch + 1}/{self.epochs} step {step}",
            loss=f"{loss:.3f}", lr=f"{lr:.1e}",
        )

    def epoch_end(self, epoch: int, record: dict[str, Any], seconds_left: float | None) -> None:
        dice = record.get("val_dice_mean", math.nan)
        left = "?" if seconds_left is None else f"{int(seconds_left // 60)}:{int(seconds_left % 60):02d}"
        self.progress.update(self.task, dice="-" if math.isnan(dice) else f"{dice:.3f}", left=left)
        self.progress.console.print(
            f"  epoch {record['epoch']}: train loss {record['train_loss']:.4f}, val loss {record['val_loss']:.4f}, "
            f"val Dice " + ", ".join(f"{o} {d:.3f}" for o, d in record["val_dice"].items()) + f", lr {record['lr']:.1e}",
            highlight=False,
        )

    def finish(self, reason: str) -> None:
        self.progress.stop()
        err_console.print(f"  stopped: {reason}")
