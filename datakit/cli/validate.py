"""``datakit validate --run DIR``: decide for every trace whether it is fit to train on, and say why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from datakit.cli.console import console


def _overview(summary: dict[str, Any]) -> Table:
    t = Table(title="Checks (error rows reject a trace, warning rows flag it)", title_justify="left")
    for head, just in (
        ("check", "left"),
        ("judged", "right"),
        ("passed", "right"),
        ("failed", "right"),
        ("flagged", "right"),
        ("codes", "left"),
    ):
        t.add_column(head, justify=just)  # type: ignore[arg-type]
    for c in summary["checks"]:
        codes = ", ".join(f"{code} {n}" for code, n in c["codes"].items()) or "-"
        t.add_row(
            Text(c["check"]),
            f"{c['judged']:,}",
            f"{c['passed']:,}",
            f"[red]{c['failed']:,}[/red]" if c["failed"] else "0",
            f"[yellow]{c['flagged']:,}[/yellow]" if c["flagged"] else "0",
            Text(codes),
        )
    return t


def _examples(check: dict[str, Any]) -> Table:
    t = Table(title=Text(f"{check['check']}: {check['description']}"), title_justify="left", show_lines=False)
    t.add_column("study")
    t.add_column("code")
    t.add_column("message", overflow="fold")
    for ex in check["examples"]:
        style = "red" if ex["severity"] == "error" else "yellow"
        message = ex["message"] if len(ex["message"]) <= 300 else ex["message"][:297] + "…"
        t.add_row(Text(str(ex["study_id"])), Text(ex["code"], style=style), Text(message))
    return t


def summary_view(summary: dict[str, Any]) -> Group:
    """The validation summary: totals, a table of the checks, and example failures of each failing check."""
    n = summary["traces"]
    head = Text.assemble(
        ("Validated ", "bold"),
        f"{n:,} traces of ",
        (summary.get("run", ""), "bold"),
        "\n",
        ("passed ", "green"),
        f"{summary['passed']:,} ({summary['pass_rate']:.1%}), ",
        ("rejected ", "red"),
        f"{summary['rejected']:,}, ",
        ("flagged ", "yellow"),
        f"{summary['flagged']:,} (warnings only, still passed)",
    )
    parts: list[Any] = [head, _overview(summary)]
    parts += [_examples(c) for c in summary["checks"] if c["examples"]]
    for note in summary.get("notes", []):
        parts.append(Text(f"Note: {note}", style="yellow"))
    priors = summary.get("prior_references")
    if priors and priors["traces"]:
        parts.append(
            Text(
                f"{priors['traces']:,} final report(s) compare with an earlier study ({priors['sentences']:,} "
                'sentences): the export option prior_sentences = "remove" rewrites or drops them.',
                style="yellow",
            )
        )
    judge = summary.get("judge")
    if judge:
        asked = f"{judge['asked']:,} traces, {judge['sent']:,} sent, {judge['cached']:,} from the cache"
        parts.append(Text(f"LLM judge: {asked}."))
    if summary.get("duplicates"):
        parts.append(
            Text(
                f"{summary['duplicates']} extra trace(s) of an already-seen study were set aside.",
                style="yellow",
            )
        )
    parts.append(
        Text(
            f"Rows: validation.parquet; rejected traces with every reason: quarantine.jsonl "
            f"({summary['seconds'].get('total', 0):.1f} s)"
        )
    )
    if summary.get("gate") is not None:
        ok = summary["gate"] == "passed"
        parts.append(
            Text(f"Gate {summary['min_pass_rate']:.1%}: {summary['gate']}", style="green" if ok else "red")
        )
    return Group(*parts)


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to the root app."""

    @app.command()
    def validate(
        run: Path = typer.Option(..., "--run", help="Run directory (after annotate)."),
        min_pass_rate: float | None = typer.Option(
            None,
            "--min-pass-rate",
            min=0.0,
            max=1.0,
            help="Exit with code 4 when a smaller share of traces passes (a pipeline gate).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (for scripts)."),
        workers: int | None = typer.Option(None, "--workers", min=1, help="Processes (default: all cores)."),
        config: Path | None = typer.Option(None, "--config", help="A datakit.toml (default: the run's)."),
        force: bool = typer.Option(False, "--force", help="Run even when nothing changed since the last validate."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    ) -> None:
        """Check every trace of RUN: validation.parquet, rejected traces in quarantine.jsonl.

        Checks: schema, clinical agreement, knowledge, reflection, leakage, privacy, form, diversity.
        """
        import datakit.validate
        from datakit.errors import ValidationGateError

        def show(summary: dict[str, Any]) -> None:
            if as_json:
                typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
            else:
                console.print(summary_view(summary))

        try:
            # --min-pass-rate and --workers are for this command only: the run's config keeps neither
            result = datakit.validate.run(run, config, min_pass_rate=min_pass_rate, workers=workers, force=force,
                                          progress=not (no_progress or as_json))
        except ValidationGateError as err:
            show(err.result.summary)  # type: ignore[attr-defined]
            raise
        if result.skipped and not as_json:
            from datakit.cli.render import skipped_note

            console.print(skipped_note("validate", result))
        show(result.summary)
