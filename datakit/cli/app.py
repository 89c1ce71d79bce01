"""The root ``datakit`` command. Commands parse, call one library function, render."""

from __future__ import annotations

import os
import shlex
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
        except KeyboardInterrupt:
            typer.secho("Interrupted.", err=True, fg="yellow")
            typer.echo(interrupted_hint(ctx.invoked_subcommand), err=True)
            sys.exit(130)


def interrupted_hint(command: str | None) -> str:
    """What an interrupted command kept and how to go on from there."""
    again = "datakit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    kept = "Tables and the manifest are written whole or not at all, so nothing half-written was kept"
    if command in ("annotate", "build"):
        kept = ("The LLM teacher's answers received so far are kept in the run's cache.sqlite and will not be "
                "asked again; tables and the manifest are written whole or not at all")
    if command == "build":
        kept += ", and finished stages are not redone"
    return f"{kept}. To continue, run the same command again:\n  {again}"


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
    from datakit.cli import annotate, build, evaluate, export, finetune, ingest, knowledge, review, validate

    ingest.register(app)
    knowledge.register(app)
    annotate.register(app)
    validate.register(app)
    finetune.register(app)
    evaluate.register(app)
    review.register(app)
    export.register(app)
    build.register(app)


_register()


def main() -> None:
    """Entry point of the ``datakit`` script."""
    app()
