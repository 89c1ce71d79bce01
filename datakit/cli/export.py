"""``datakit export --run DIR [--formats trl,llamafactory,...]``: training files for each framework, and a card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from datakit.cli.console import console

SPLITS = ("train", "val", "test")


def export_view(result: Any) -> Group:
    """Rows per format and split, what was left out, and where the card is."""
    if result.skipped:
        return Group(Text(f"Export of {result.run.root} is up to date (nothing it depends on changed); "
                          "skipped. --force exports again.", style="green"))
    t = Table(title=f"Exported {result.counts['study_out']:,} of {result.counts['trace_in']:,} traces",
              title_justify="left")
    t.add_column("format")
    for s in SPLITS:
        t.add_column(s, justify="right")
    for name in result.formats:
        t.add_row(Text(name), *(f"{result.stats.rows[(name, s)]:,}" for s in SPLITS))
    parts: list[Any] = [t]
    left = [(reason, n) for reason, n in result.stats.excluded.most_common()]
    left += [(f"{code} ({fmt})", n) for (fmt, code), n in result.stats.left_out.most_common()]
    if left:
        parts.append(Text("Left out: " + ", ".join(f"{r} {n:,}" for r, n in left), style="yellow"))
    parts.append(Text(f"Files: {result.root}/<format>/; card: {result.root / 'README.md'} "
                      f"({result.seconds:.1f} s)"))
    return Group(*parts)


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to the root app."""

    @app.command()
    def export(
        run: Path = typer.Option(..., "--run", help="Run directory (after validate)."),
        formats: str | None = typer.Option(
            None, "--formats", "--format",
            help="Comma-separated: trl,llamafactory,swift,qwen-vl,llava (default: export.formats)."),
        tag_style: str | None = typer.Option(None, "--tag-style", help="think | thought | reasoning_content | none."),
        image_mode: str | None = typer.Option(None, "--image-mode", help="reference | hardlink | copy."),
        force: bool = typer.Option(False, "--force", help="Export even when nothing changed."),
        config: Path | None = typer.Option(None, "--config", help="A datakit.toml (default: the run's)."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    ) -> None:
        """Write RUN/export/<format>/ train/val/test files for each framework, and the dataset card."""
        import datakit.export

        names = [f.strip() for f in formats.split(",") if f.strip()] if formats else None
        # --formats, --tag-style and --image-mode are for this command only: the run's config keeps none of them
        result = datakit.export.run(run, config, formats=names, force=force, tag_style=tag_style,
                                    image_mode=image_mode, progress=not no_progress)
        console.print(export_view(result))
