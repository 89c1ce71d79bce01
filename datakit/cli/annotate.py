"""``datakit annotate --run DIR``: write a trace for every study with the offline or the LLM teacher."""

from __future__ import annotations

import gc
from pathlib import Path

import typer

from datakit.cli.console import console


def register(app: typer.Typer) -> None:
    """Add the ``annotate`` command to the root app."""

    @app.command()
    def annotate(
        run: Path = typer.Option(..., "--run", help="Run directory (after ingest and retrieve)."),
        teacher: str | None = typer.Option(None, "--teacher", help="offline (default, no network) or llm."),
        model: str | None = typer.Option(None, "--model", help="LLM teacher: the model name."),
        base_url: str | None = typer.Option(None, "--base-url", help="LLM teacher: an OpenAI-compatible URL."),
        api_key_env: str | None = typer.Option(
            None, "--api-key-env", help="Name of the environment variable holding the key (default OPENAI_API_KEY)."
        ),
        transport: str | None = typer.Option(None, "--transport", help="online (default) or batch (Batch API)."),
        multi_stage: bool | None = typer.Option(
            None, "--multi-stage/--single-call", help="Three calls per trace (perception, reasoning, reflection)."
        ),
        prompts: Path | None = typer.Option(None, "--prompts", help="Your own prompt template folder."),
        concurrency: int | None = typer.Option(None, "--concurrency", min=1, help="Requests in flight."),
        error_rate: float | None = typer.Option(None, "--error-rate", help="Offline: share of drafts with an error."),
        seed: int | None = typer.Option(None, "--seed", help="Seed of the offline teacher."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Annotate only the first N studies."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Count uncached requests and project tokens and cost."),
        cancel: bool = typer.Option(False, "--cancel", help="Cancel this run's submitted batches and stop."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
        config: Path | None = typer.Option(None, "--config", help="A datakit.toml (default: the run's)."),
        force: bool = typer.Option(False, "--force", help="Run even when nothing changed since the last annotate."),
    ) -> None:
        """Write perception → reasoning → reflection traces for every study of RUN (traces.parquet)."""
        import datakit.annotate
        from datakit.cli.render import annotate_summary, estimate_table
        from datakit.stage import open_run

        rd, cfg = open_run(run, config, overrides={
            "teacher.kind": teacher,
            "teacher.model": model,
            "teacher.base_url": base_url,
            "teacher.api_key_env": api_key_env,
            "teacher.transport": transport,
            "teacher.prompt_mode": None if multi_stage is None else ("multi" if multi_stage else "single"),
            "teacher.prompts_dir": str(prompts) if prompts else None,
            "teacher.max_concurrency": concurrency,
            "teacher.error_rate": error_rate,
            "teacher.seed": seed,
        })
        if cancel:
            from datakit.annotate.batch import cancel_batches

            cancelled = cancel_batches(rd, config=cfg.teacher)
            if not cancelled:
                console.print("No batch of this run is still running: nothing to cancel.")
            for batch in cancelled:
                n = len(batch.get("keys", []))
                console.print(f"Batch {batch.get('id')} ({n} requests): {batch.get('status')}; a later "
                              "`datakit annotate` merges what it answered and resubmits the rest.")
            return
        if dry_run:
            console.print(estimate_table(datakit.annotate.estimate(rd, cfg, limit=limit)))
            return
        # only a stage that worked changes the run's settings (it saves them when it finishes)
        result = datakit.annotate.run(rd, cfg, limit=limit, progress=not no_progress, force=force)
        console.print(annotate_summary(result))
        # The work is done and the process about to end: the collections Python runs while it shuts down would
        # walk every object of the run once more (~0.1 s after 2,000 LLM traces). Frozen objects are skipped.
        gc.freeze()
