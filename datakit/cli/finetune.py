"""``datakit finetune`` and ``datakit predict``: LoRA fine-tuning on a trl export, and reports from the model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from datakit.cli.console import console, err_console


def _note(message: str) -> None:
    err_console.print(Text(f"Note: {message}", style="yellow"))


def register(app: typer.Typer) -> None:
    """Add the ``finetune`` and ``predict`` commands to the root app."""

    @app.command()
    def finetune(
        export: Path = typer.Argument(..., help="The trl export (RUN/export/trl, RUN/export or RUN)."),
        model: str = typer.Option(..., "--model", help="Base model: a local folder, or a hub id already cached."),
        out: Path | None = typer.Option(None, "--out", help="Output folder (default: RUN/finetune/<model name>)."),
        config: Path | None = typer.Option(None, "--config", help="A TOML file with a [finetune] section."),
        cpu: bool | None = typer.Option(None, "--cpu", help="Train on the CPU (fp32) even where CUDA is there."),
        merge: bool | None = typer.Option(None, "--merge", help="Also write OUT/merged, the adapter merged in."),
        max_pixels: int | None = typer.Option(None, "--max-pixels", help="Pixel budget per image (Qwen-VL)."),
        batch_size: int | None = typer.Option(None, "--batch-size", help="Samples per device per step."),
        grad_accum: int | None = typer.Option(None, "--grad-accum", help="Steps accumulated per update."),
        epochs: float | None = typer.Option(None, "--epochs"),
        max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N updates (-1: the epochs)."),
        lr: float | None = typer.Option(None, "--lr", help="Learning rate."),
        lora_r: int | None = typer.Option(None, "--lora-r", help="LoRA rank."),
        lora_alpha: int | None = typer.Option(None, "--lora-alpha"),
        resume: bool | None = typer.Option(None, "--resume/--no-resume", help="Continue from the last checkpoint."),
    ) -> None:
        """LoRA fine-tune a vision-language model on EXPORT's train split; loss on the assistant turn only.

        Writes OUT/adapter (with the base model's processor and chat template), OUT/finetune.json (the resolved
        settings), OUT/metrics.jsonl (loss per step) and OUT/checkpoints (a re-run resumes from the last one).
        """
        from datakit.finetune import finetune as run_finetune
        from datakit.finetune import load_finetune_config

        cfg = load_finetune_config(config, overrides={
            "cpu": cpu, "merge": merge, "max_pixels": max_pixels, "batch_size": batch_size,
            "grad_accum": grad_accum, "epochs": epochs, "max_steps": max_steps, "learning_rate": lr,
            "lora_r": lora_r, "lora_alpha": lora_alpha, "resume": resume,
        })
        if out is None:
            out = _run_dir(export) / "finetune" / Path(model.rstrip("/")).name
        result = run_finetune(export, model, out, cfg, notify=_note)
        loss = (f"loss {result.first_loss:.3f} → {result.last_loss:.3f}" if result.first_loss is not None
                else "no loss logged")
        resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
        console.print(Text(f"Trained {result.steps} steps in {result.seconds:.1f} s{resumed}: {loss}"))
        console.print(Text(f"Adapter: {result.adapter}"))
        if result.merged:
            console.print(Text(f"Merged model: {result.merged}"))
        console.print(Text(f"Settings: {out / 'finetune.json'}; loss per step: {out / 'metrics.jsonl'}"))

    @app.command()
    def predict(
        export: Path = typer.Argument(..., help="The trl export (RUN/export/trl, RUN/export or RUN)."),
        model: str = typer.Option(..., "--model", help="Base model folder, or a merged model (then no --adapter)."),
        adapter: Path | None = typer.Option(None, "--adapter", help="OUT/adapter written by `datakit finetune`."),
        split: str | None = typer.Option(None, "--split", help="Split to predict (default: test)."),
        out: Path = typer.Option(..., "--out", help="Predictions JSONL: study_id, think, report, generation."),
        config: Path | None = typer.Option(None, "--config", help="A TOML file with a [predict] section."),
        batch_size: int | None = typer.Option(None, "--batch-size"),
        max_new_tokens: int | None = typer.Option(None, "--max-new-tokens"),
        sample: bool | None = typer.Option(None, "--sample/--greedy", help="Sample instead of greedy decoding."),
        temperature: float | None = typer.Option(None, "--temperature"),
        top_p: float | None = typer.Option(None, "--top-p"),
        max_pixels: int | None = typer.Option(None, "--max-pixels", help="Default: what the adapter was trained with."),
        limit: int | None = typer.Option(None, "--limit", help="Only the first N studies."),
        tags: str | None = typer.Option(None, "--tags", help="Think-tag style: auto, think, thought, "
                                        "reasoning_content, none."),
        cpu: bool | None = typer.Option(None, "--cpu"),
    ) -> None:
        """Generate a report for every study of one split of EXPORT; the think block is split off the report."""
        from datakit.finetune import load_predict_config
        from datakit.finetune import predict as run_predict

        cfg = load_predict_config(config, overrides={
            "split": split, "batch_size": batch_size, "max_new_tokens": max_new_tokens, "do_sample": sample,
            "temperature": temperature, "top_p": top_p, "max_pixels": max_pixels, "limit": limit, "tags": tags,
            "cpu": cpu,
        })
        result = run_predict(export, model, out, cfg, adapter=adapter, notify=_note)
        console.print(Text(f"Predicted {result.rows} studies ({cfg.split}, tags {result.tags}) in "
                           f"{result.seconds:.1f} s: {result.out}"))


def _run_dir(export: Path) -> Path:
    """The run folder an export belongs to (RUN/export/trl → RUN), else the export's own folder."""
    export = export.resolve()
    if export.is_file():
        export = export.parent
    if export.name == "trl" and export.parent.name == "export":
        return export.parent.parent
    if export.name == "export":
        return export.parent
    return export
