"""``datakit review`` (the full-screen app) and ``datakit show`` (one study printed once)."""

from __future__ import annotations

from pathlib import Path

import typer

from datakit.cli.console import console
from datakit.errors import DatakitError


class ReviewExtraMissing(DatakitError):
    """The review app's packages (textual, textual-image) are not installed."""


def register(app: typer.Typer) -> None:
    """Add ``review`` and ``show`` to the root app."""

    @app.command()
    def review(
        run: Path = typer.Option(..., "--run", help="Run directory (after annotate; validate for the checks)."),
        query: str = typer.Option("", "--filter", help="Start with this filter, e.g. 'status:rejected split:test'."),
    ) -> None:
        """Read RUN's traces in a full-screen app and accept, reject or flag each (? in the app for the keys).

        Decisions go to RUN/review/decisions.jsonl as they are made; the last one per study wins.
        """
        try:
            import textual  # noqa: F401
            import textual_image  # noqa: F401
        except ImportError as err:
            raise ReviewExtraMissing(
                f"datakit review needs textual and textual-image ({err.name} is not installed)",
                hint="pip install 'datakit[review]'",
            ) from err
        from datakit.review.app import run_app

        run_app(run, query)

    @app.command()
    def show(
        study_id: str = typer.Argument(..., metavar="STUDY_ID", help="A study id of the run."),
        run: Path = typer.Option(..., "--run", help="Run directory."),
        as_json: bool = typer.Option(False, "--json", help="Print the raw record as JSON."),
        config: Path | None = typer.Option(None, "--config", help="A datakit.toml (default: the run's)."),
    ) -> None:
        """Print one study's trace, report, checks and decision once (for scripts, logs and less)."""
        from datakit.review import show as show_lib
        from datakit.rundir import RunDir

        rd = RunDir.open(run)
        detail = show_lib.load(rd, study_id, config)
        if as_json:
            typer.echo(show_lib.to_json(detail))
        else:
            show_lib.print_detail(detail, console)
