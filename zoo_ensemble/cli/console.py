"""Shared console output: rich consoles, logging, progress and result tables."""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # only annotations: importing them loads torch, which `zoo --help` need not wait for
    from ..ensembles.base import LearnedTable
    from ..evaluation import Report, Stat

console = Console()
err_console = Console(stderr=True)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """Untrusted text (a card field, a plugin or repo name, a file name) without control
    characters, so it cannot move the cursor, set the terminal's title or colours."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(text))


def safe(text: object) -> str:
    """Untrusted text for a rich string or table cell: control characters replaced and rich
    markup escaped, so ``[/evil]`` prints as written instead of failing or styling."""
    return escape(plain(text))


class _LineFormatter(logging.Formatter):
    """``warning: message`` on one line, whatever the terminal's width (messages may hold paths
    and numbers a reader greps for; a wrapped line is several lines to a log)."""

    def format(self, record: logging.LogRecord) -> str:
        text = plain(" ".join(record.getMessage().split()))
        return text if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and tools swap it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


def setup_logging(verbose: bool = False) -> None:
    logger = logging.getLogger("zoo_ensemble")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_LineFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = True  # no root handler in the CLI; tools that add one (pytest) see the records too


def quiet_rank() -> None:
    """A torchrun process other than rank 0: no output, no progress, warnings unsaid (rank 0
    says them once); its own errors still print (see ``cli.main``)."""
    console.quiet = True
    err_console.quiet = True
    logging.getLogger("zoo_ensemble").setLevel(logging.ERROR)


def progress(nbytes: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        *((DownloadColumn(), TransferSpeedColumn()) if nbytes else (MofNCompleteColumn(),)),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err_console,
    )


def progress_callback(description: str, nbytes: bool = False) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback that shows a progress bar from its first call to its last
    (``nbytes``: counts bytes, shown as sizes and a speed)."""
    bar, task = progress(nbytes), None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total)
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    return update


def _fmt(st: Stat, digits: int) -> str:
    if st.n == 0 or math.isnan(st.mean):
        return "-"
    return f"{st.mean:.{digits}f}±{st.std:.{digits}f}" if st.n > 1 else f"{st.mean:.{digits}f}"


def report_table(report: Report, title: str = "Evaluation") -> Table:
    """The paper's layout: one row per organ, then the mean over labels; mean ± std over patients."""
    table = Table(title=title, title_justify="left")
    table.add_column("Organ")
    for name in ("Dice", "Precision", "Recall", "HD95 (mm)"):
        table.add_column(name, justify="right")
    table.add_column("n", justify="right")
    for organ in report.organs:
        st = report.organ_stats(organ)
        table.add_row(organ, _fmt(st["dice"], 3), _fmt(st["precision"], 3), _fmt(st["recall"], 3), _fmt(st["hd95"], 2), str(st["dice"].n))
    st = report.mean_stats()
    table.add_row("[b]mean[/b]", _fmt(st["dice"], 3), _fmt(st["precision"], 3), _fmt(st["recall"], 3), _fmt(st["hd95"], 2), str(st["dice"].n), end_section=True)
    if report.missed():
        table.caption = f"{report.missed()} organ(s) missed or spurious: HD95 set to the grid diagonal"
    return table


def learned_table(learned: LearnedTable) -> Table:
    """What a learned ensemble method learned (its plain numbers) as a table."""
    table = Table(title=safe(learned.title), title_justify="left")
    table.add_column("member channel")
    for column in learned.columns:
        table.add_column(safe(column), justify="right")
    for name, values in learned.rows:
        table.add_row(safe(name), *(f"{v:+.3f}" for v in values))
    return table
