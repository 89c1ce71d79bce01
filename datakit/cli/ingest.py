"""``datakit ingest SOURCE --run DIR``: read a dataset into a run directory and summarise it."""

from __future__ import annotations

from pathlib import Path

import typer

from datakit.cli.console import console


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` command to the root app."""

    @app.command()
    def ingest(
        source: Path = typer.Argument(..., help="The dataset's top folder (MIMIC-CXR(-JPG), IU-Xray, R2Gen)."),
        run: Path = typer.Option(..., "--run", help="Run directory to write (created if needed)."),
        format: str | None = typer.Option(
            None, "--format", help="Source format; detected from the folder when left out (see `datakit formats`)."
        ),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Read only the first N studies."),
        split: str | None = typer.Option(
            None, "--split", help="auto (official where the source has one, else by patient), official, patient."
        ),
        labels: str | None = typer.Option(None, "--labels", help="MIMIC label file: chexpert (default) or negbio."),
        convert: bool | None = typer.Option(
            None, "--convert/--no-convert", help="Convert images to 8-bit PNG (default: yes)."
        ),
        image_size: int | None = typer.Option(None, "--image-size", help="Longest side of converted images."),
        workers: int | None = typer.Option(None, "--workers", min=1, help="Processes (default: all cores)."),
        config: Path | None = typer.Option(None, "--config", help="A datakit.toml to start from."),
        force: bool = typer.Option(False, "--force", help="Run even when nothing changed since the last ingest."),
        replace: bool = typer.Option(
            False, "--replace", help="Let another source, or a --limit, replace the studies already in RUN."
        ),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    ) -> None:
        """Read SOURCE into RUN: studies.parquet, images.parquet, images/, quarantine.jsonl, manifest.json."""
        import datakit.ingest
        from datakit.cli.options import flag_overrides
        from datakit.cli.render import ingest_summary
        from datakit.config import resolve_config
        from datakit.rundir import RunDir

        # a run that exists keeps its own settings (datakit.toml) unless --config names another file
        overrides, flags = flag_overrides({
            "ingest.format": ("--format", format),
            "ingest.limit": ("--limit", limit),
            "ingest.split.strategy": ("--split", split),
            "ingest.label_source": ("--labels", labels),
            "ingest.images.convert": ("--convert/--no-convert", convert),
            "ingest.images.max_size": ("--image-size", image_size),
            "ingest.workers": ("--workers", workers),
            "ingest.images.workers": ("--workers", workers),
        })
        cfg = resolve_config(RunDir(run).config_path, config, overrides=overrides, flag_names=flags)
        if limit is None:
            cfg.ingest.limit = None  # --limit is for one command, never a setting the run keeps
        result = datakit.ingest.run(source, run, cfg, force=force, replace=replace, progress=not no_progress)
        console.print(ingest_summary(result))

    @app.command()
    def formats() -> None:
        """List the source formats datakit reads and what it looks for to detect each."""
        from rich.text import Text

        from datakit.ingest.base import FORMATS

        for name, fmt in sorted(FORMATS.items()):
            console.print(Text.assemble((name, "bold"), f" ({fmt.dataset}): {fmt.looks_for}"))
