"""The typer application every command module adds its commands to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="zoo",
    help="Compose single-organ CT segmentation models into multi-organ ensembles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"zoo-ensemble {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Compose single-organ CT segmentation models into multi-organ ensembles."""
