"""``datakit build [CONFIG]``, ``datakit status RUN`` and ``datakit init [PATH]``."""

from __future__ import annotations

import gc
from pathlib import Path

import typer

from datakit.cli.console import console


def register(app: typer.Typer) -> None:
    """Add ``build``, ``status`` and ``init`` to the root app."""

    @app.command()
    def build(
        config: Path | None = typer.Argument(
            None, help="A datakit.toml (`datakit init` writes one); left out: the bundled demo into runs/demo."
        ),
        run: Path | None = typer.Option(None, "--run", help="Run folder (default: the config's `run`)."),
        from_stage: str | None = typer.Option(
            None, "--from", help="Run this stage and the ones after it again (ingest, retrieve, annotate, validate, "
            "export)."
        ),
        only: str | None = typer.Option(None, "--only", help="Run only this stage (again)."),
        limit: int | None = typer.Option(
            None, "--limit", min=1, help="Build the first N studies for a quick look, into RUN-limitN."
        ),
        teacher: str | None = typer.Option(None, "--teacher", help="offline or llm (overrides teacher.kind)."),
        model: str | None = typer.Option(None, "--model", help="LLM teacher: the model name."),
        base_url: str | None = typer.Option(None, "--base-url", help="LLM teacher: an OpenAI-compatible URL."),
        min_pass_rate: float | None = typer.Option(
            None, "--min-pass-rate", help="Stop before export (exit 4) when fewer traces pass validation."
        ),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
    ) -> None:
        """Build the training data for one config: ingest → retrieve → annotate → validate → export.

        Stages that are up to date are skipped, so an interrupted build continues where it stopped.
        """
        import datakit.pipeline
        from datakit.cli.build_view import StageLines, summary_view
        from datakit.cli.options import flag_overrides
        from datakit.pipeline.status import run_status

        overrides, flags = flag_overrides({
            "teacher.kind": ("--teacher", teacher),
            "teacher.model": ("--model", model),
            "teacher.base_url": ("--base-url", base_url),
            "validate.min_pass_rate": ("--min-pass-rate", min_pass_rate),
        })
        plan = datakit.pipeline.plan(config, run=run, from_stage=from_stage, only=only, limit=limit,
                                  overrides=overrides, flags=flags)
        lines = StageLines(plan.run)
        try:
            result = datakit.pipeline.run_plan(plan, progress=not no_progress, reporter=lines)
        finally:
            lines.close()
        console.print(summary_view(run_status(plan.run), requests=result.requests, seconds=result.seconds))
        gc.freeze()  # the process ends now: no last collection over every object of the run

    @app.command()
    def status(run: Path = typer.Argument(..., help="A run folder (finished or not).")) -> None:
        """Show what a run holds: stages finished, studies, traces accepted and rejected, exports, teacher use."""
        from datakit.cli.build_view import summary_view
        from datakit.pipeline.status import run_status

        console.print(summary_view(run_status(run), title="Run"))

    @app.command()
    def init(
        path: Path = typer.Argument(Path("datakit.toml"), help="File (or folder) to write."),
        dataset: str = typer.Option("mimic-cxr", "--dataset", help="mimic-cxr, mimic-cxr-jpg or iu-xray."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    ) -> None:
        """Write a commented starter datakit.toml for a dataset."""
        from rich.text import Text

        from datakit.starter import write_starter

        written = write_starter(path, dataset, force=force)
        console.print(Text.assemble("Wrote ", (str(written), "bold"), f" for {dataset}. Set `source` to your "
                                    f"copy of the dataset, then run `datakit build {written}`."))
