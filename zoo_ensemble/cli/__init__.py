"""The ``zoo`` command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import os
import sys

import click
import typer

from ..errors import ZooError
from .console import err_console, setup_logging

app = typer.Typer(
    name="zoo",
    help="Compose single-organ CT segmentation models into multi-organ ensembles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from . import compose, data, demo, evaluate, experiment, models, zoo  # noqa: F401  (each module adds its commands to `app`)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    setup_logging(verbose=bool(os.environ.get("ZOO_DEBUG")))
    _register()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="zoo", standalone_mode=False)
    except ZooError as exc:
        if os.environ.get("ZOO_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(rv, int) and rv != 0:
        sys.exit(rv)
