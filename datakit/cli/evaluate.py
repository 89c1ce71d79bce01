"""``datakit eval PREDICTIONS --refs PATH``: NLG and clinical-efficacy metrics, each with its convention named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from datakit.cli.console import console


def _nlg_table(nlg: dict[str, Any]) -> Table:
    t = Table(title="NLG (COCO caption scorers, as R2Gen)", title_justify="left")
    for name in nlg["scores"]:
        t.add_column(name.replace("_", "-"), justify="right")
    t.add_row(*("not computed" if v is None else f"{v:.4f}" for v in nlg["scores"].values()))
    return t


def _ce_table(ce: dict[str, Any]) -> Table:
    t = Table(title=f"Clinical efficacy (labels read from: {ce['labels_text_description']})", title_justify="left")
    for head, just in (("convention", "left"), ("labels", "right"), ("average", "left"), ("P", "right"),
                       ("R", "right"), ("F1", "right"), ("exact match", "right")):
        t.add_column(head, justify=just)  # type: ignore[arg-type]
    for conv, block in ce["conventions"].items():
        for set_name in ("14", "5"):
            res = block[f"labels_{set_name}"]
            for avg in ("micro", "macro"):
                m = res[avg]
                acc = res.get("example_accuracy") if avg == "micro" else None
                t.add_row(conv.replace("_", "-"), set_name, avg, f"{m['precision']:.4f}", f"{m['recall']:.4f}",
                          f"{m['f1']:.4f}", "" if acc is None else f"{acc:.4f}")
        t.add_section()
    return t


def _per_label_table(ce: dict[str, Any]) -> Table:
    convs = list(ce["conventions"])
    t = Table(title="Per label F1 (support = reference positives)", title_justify="left")
    t.add_column("label")
    for conv in convs:
        t.add_column(f"F1 {conv.replace('_', '-')}", justify="right")
        t.add_column("support", justify="right")
    first = ce["conventions"][convs[0]]["labels_14"]["per_label"]
    for label in first:
        cells = []
        for conv in convs:
            row = ce["conventions"][conv]["labels_14"]["per_label"][label]
            cells += [f"{row['f1']:.4f}", str(row["support"])]
        t.add_row(label, *cells)
    return t


def summary_view(s: dict[str, Any], *, per_label: bool = False) -> Group:
    """The evaluation summary: counts, the NLG table, the CE table, and notes on what was not computed."""
    c = s["counts"]
    parts: list[Any] = [Text.assemble(("Scored ", "bold"), f"{c['scored']:,} reports ", f"({s['layout']} layout)")]
    parts.append(_nlg_table(s["nlg"]))
    parts.append(_ce_table(s["clinical_efficacy"]))
    if per_label:
        parts.append(_per_label_table(s["clinical_efficacy"]))
    notes = [Text(f"Normalisation: {s['nlg']['normalisation']}. Labeler: {s['clinical_efficacy']['labeler']}.")]
    for conv, block in s["clinical_efficacy"]["conventions"].items():
        notes.append(Text(f"{conv.replace('_', '-')}: {block['description']}"))
    gen = s.get("generation") or []
    if len(gen) == 1:
        notes.append(Text("Generation: " + ", ".join(f"{k}={v}" for k, v in gen[0].items())))
    elif len(gen) > 1:
        notes.append(Text(f"The predictions were made with {len(gen)} different generation settings: the scores "
                          "mix them.", style="yellow"))
    meteor = s["nlg"]["meteor"]
    if not meteor["computed"]:
        how = f" To compute it: {meteor['install']}." if meteor.get("install") else ""
        notes.append(Text(f"METEOR was not computed: {meteor['reason']}.{how}", style="yellow"))
    if c.get("empty_predictions"):
        notes.append(Text(f"{c['empty_predictions']:,} prediction(s) with an empty report, scored as empty.",
                          style="yellow"))
    for what, label in (("predictions_without_reference", "prediction(s) without a reference"),
                        ("references_without_prediction", "reference(s) without a prediction")):
        if c[what]:
            shown = ", ".join(s["unmatched"][what][:5])
            notes.append(Text(f"{c[what]:,} {label}, not scored (e.g. {shown}).", style="yellow"))
    if c["unreadable_rows"]:
        first = s["unreadable_rows"][0]
        notes.append(Text(f"{c['unreadable_rows']:,} unreadable row(s), not scored (first: {first['file']} line "
                          f"{first['line']}: {first['reason']}).", style="yellow"))
    for name, entry in s["model_based"].items():
        if entry["status"] == "computed":
            vals = ", ".join(f"{k} {v:.4f}" for k, v in entry["scores"].items())
            notes.append(Text(f"{name}: {vals}"))
        else:
            notes.append(Text(f"{name}: {entry['status']} ({entry['note']})", style="dim"))
    return Group(*parts, *notes)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to the root app."""

    @app.command(name="eval")
    def evaluate(
        predictions: Path = typer.Argument(
            ..., help="Predictions: a `datakit predict` JSONL, R2GenCMN res.csv, R2GenGPT test_result.json, or a "
            "folder holding such a pair."
        ),
        refs: Path | None = typer.Option(
            None, "--refs", help="References: an export split file (RUN/export/trl/test.jsonl) or a run directory "
            "for datakit predictions; gts.csv / test_refs.json for R2Gen-style files (found beside them if omitted)."
        ),
        out: Path | None = typer.Option(None, "--out", help="Write the full summary as JSON to this file."),
        labels_text: str = typer.Option(
            "impression", "--labels-text", help="What the labeler reads: impression (else findings) or report."
        ),
        clean: str = typer.Option(
            "mimic_cxr", "--clean", help="Normalisation before NLG metrics: mimic_cxr or iu_xray (R2Gen's report "
            "cleaners) or none."
        ),
        layout: str = typer.Option("auto", "--layout", help="auto, datakit, r2gen-csv or coco-json."),
        meteor: bool = typer.Option(True, "--meteor/--no-meteor", help="Compute METEOR (needs Java)."),
        scorer: list[str] = typer.Option(
            [], "--scorer", help="Also run a model-based scorer if installed: chexbert, radgraph, green, ratescore."
        ),
        per_label: bool = typer.Option(False, "--per-label", help="Show each label's F1 too."),
        per_example: bool = typer.Option(False, "--per-example", help="Add every pair's NLG scores to the JSON."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (for scripts)."),
    ) -> None:
        """Score generated reports: BLEU-1..4, METEOR, ROUGE-L, CIDEr and clinical-efficacy P/R/F1.

        Clinical efficacy over 14 and 5 labels, micro and macro, positive-only and uncertain-as-positive.
        """
        import datakit.evaluate

        result = datakit.evaluate.run(predictions, refs, layout=layout, clean=clean, labels_text=labels_text,
                                      meteor=meteor, scorers=scorer, per_example=per_example, out=out)
        if as_json:
            typer.echo(json.dumps(result.summary, indent=2, ensure_ascii=False))
            return
        console.print(summary_view(result.summary, per_label=per_label))
        if result.out is not None:
            console.print(Text(f"Summary: {result.out}"))
