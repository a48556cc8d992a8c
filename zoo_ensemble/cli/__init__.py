"""The ``zoo`` command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import os
import sys

import typer

from ..errors import ZooError
from .app import app
from .console import err_console, safe, setup_logging

# typer 0.29 bundles its own click; older releases use the installed one. Either way its
# exceptions derive from the click that ``typer.BadParameter`` derives from.
_CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_ABORT = typer.Abort


def _error(message: str) -> None:
    """One ``error:`` line on stderr, untrusted text escaped so that it prints as written."""
    err_console.print(f"[bold red]error:[/] {safe(message)}", highlight=False, soft_wrap=True, markup=True)


def _register() -> None:
    from . import compose, data, demo, evaluate, experiment, models, predict, zoo  # noqa: F401  (each module adds its commands to `app`)


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
        _error(str(exc))
        sys.exit(exc.exit_code)
    except (_ABORT, KeyboardInterrupt):
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
    except _CLICK_EXCEPTION as exc:  # usage errors: unknown option or command, missing argument
        hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
        _error(" ".join(exc.format_message().split()) + hint)
        sys.exit(2)
    if isinstance(rv, int) and rv != 0:
        sys.exit(rv)
