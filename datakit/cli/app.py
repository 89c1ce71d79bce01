"""The root ``datakit`` command. Commands parse, call one library function, render (STYLE.md H1)."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from datakit import __version__, logs
from datakit.errors import DatakitError


class ErrorBoundary(TyperGroup):
    """Turns a :class:`DatakitError` into ``Error: …`` / ``Hint: …`` on stderr and its exit code.

    Any other exception is a bug and keeps its traceback. ``DATAKIT_RAISE_ERRORS=1`` re-raises everything.
    """

    def invoke(self, ctx):  # noqa: D102
        try:
            return super().invoke(ctx)
        except DatakitError as err:
            if os.environ.get("DATAKIT_RAISE_ERRORS"):
                raise
            typer.secho(f"Error: {err}", err=True, fg="red")
            if err.hint:
                typer.echo(f"Hint: {err.hint}", err=True)
            sys.exit(err.exit_code)


app = typer.Typer(
    cls=ErrorBoundary,
    help="Build Med-R2-style reasoning fine-tuning data (perception → reasoning → reflection) for CXR reports.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"datakit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show what the run logs (retries and their reasons)."),
) -> None:
    """Build Med-R2-style reasoning fine-tuning data for chest X-ray report generation."""
    logs.setup(verbose=verbose)


def _register() -> None:
    from datakit.cli import annotate, evaluate, finetune, ingest, knowledge, review, validate

    ingest.register(app)
    knowledge.register(app)
    annotate.register(app)
    validate.register(app)
    finetune.register(app)
    evaluate.register(app)
    review.register(app)


_register()


def main() -> None:
    """Entry point of the ``datakit`` script."""
    app()
