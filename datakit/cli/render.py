"""Rich renderings of stage results. Only the CLI imports this module."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.console import Group
from rich.table import Table
from rich.text import Text

from datakit.tables import LABELS, SPLITS


def _split_table(result: Any) -> Table:
    t = Table(title="Studies and images per split", title_justify="left")
    t.add_column("split")
    t.add_column("studies", justify="right")
    t.add_column("images", justify="right")
    t.add_column("subjects", justify="right")
    s = result.studies.group_by("split").agg(pl.len().alias("studies"), pl.col("subject_id").n_unique().alias("subj"))
    i = result.images.group_by("study_id").len().join(result.studies.select("study_id", "split"), on="study_id")
    i = i.group_by("split").agg(pl.col("len").sum().alias("images"))
    rows = {r["split"]: r for r in s.join(i, on="split", how="left").iter_rows(named=True)}
    for split in SPLITS:
        r = rows.get(split, {})
        t.add_row(split, str(r.get("studies", 0)), str(r.get("images") or 0), str(r.get("subj", 0)))
    t.add_row("[bold]all[/bold]", f"[bold]{result.studies.height}[/bold]", f"[bold]{result.images.height}[/bold]",
              f"[bold]{result.studies['subject_id'].n_unique()}[/bold]")
    return t


def _view_table(result: Any) -> Table:
    t = Table(title="Views", title_justify="left")
    t.add_column("view")
    t.add_column("images", justify="right")
    for view, n in result.images.group_by("view").len().sort("len", descending=True).iter_rows():
        t.add_row(view, str(n))
    return t


def _label_table(result: Any) -> Table:
    t = Table(title="Labels (1 positive, 0 negative, -1 uncertain, blank = not mentioned)", title_justify="left")
    t.add_column("label")
    for head in ("1", "0", "-1", "blank"):
        t.add_column(head, justify="right")
    studies = result.studies
    sources = studies["label_source"].drop_nulls().unique().to_list()
    for col, name in LABELS.items():
        s = studies[col]
        t.add_row(name, str((s == 1).sum()), str((s == 0).sum()), str((s == -1).sum()), str(s.null_count()))
    unlabelled = studies["label_source"].null_count()
    t.caption = f"label source: {', '.join(sources) or 'none'}; studies without labels: {unlabelled}"
    return t


def _quarantine_table(result: Any) -> Table | Text:
    q = result.quarantine
    if not q.records:
        return Text("Quarantine: nothing set aside.", style="green")
    t = Table(title=f"Quarantined rows ({len(q.records)}) — see quarantine.jsonl", title_justify="left")
    t.add_column("kind")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    t.add_column("example")
    seen: dict[tuple[str, str], Any] = {}
    counts: dict[tuple[str, str], int] = {}
    for r in q.records:
        counts[(r.kind, r.code)] = counts.get((r.kind, r.code), 0) + 1
        seen.setdefault((r.kind, r.code), r)
    for (kind, code), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        ex = seen[(kind, code)]
        t.add_row(kind, code, str(n), f"{ex.key}: {ex.message}")
    return t


def skipped_note(stage: str, result: Any) -> Text:
    """One line saying that a stage found nothing changed and did no work."""
    entry = result.run.stage_entry(stage) or {}
    return Text.assemble(
        (f"{stage}: ", "bold"), "nothing changed since its last run",
        f" ({entry.get('finished_utc', '?')})" if entry else "",
        "; skipped, its tables are kept. Use --force to run it again.",
        style="green",
    )


def ingest_summary(result: Any) -> Group:
    """Studies and images per split, views, label coverage, and quarantined rows by reason."""
    if getattr(result, "skipped", False):
        return Group(skipped_note("ingest", result))
    c = result.counts
    head = Text.assemble(
        ("Ingested ", "bold"), (result.format, "bold cyan"), " into ", (str(result.run.root), "bold"), "\n",
        f"studies: {c['study_in']} in = {c['study_out']} kept + {c['study_quarantined']} quarantined; "
        f"images: {c['image_in']} in = {c['image_out']} kept + {c['image_quarantined']} quarantined",
    )
    parts: list[Any] = [head, _split_table(result), _view_table(result), _label_table(result),
                        _quarantine_table(result)]
    for key, value in result.notes.items():
        if key == "listed_not_on_disk" and value:
            parts.append(Text(f"{value} studies listed in the CSVs are not on disk (a partial download?); "
                              "they are not counted above.", style="yellow"))
    return Group(*parts)


def annotate_summary(result: Any) -> Group:
    """Traces written, teacher, injected errors, tokens and cost, quarantined studies by reason."""
    if getattr(result, "skipped", False):
        return Group(skipped_note("annotate", result))
    c = result.counts
    t = result.traces
    head = Text.assemble(
        ("Annotated with the ", "bold"), (result.teacher, "bold cyan"), " teacher into ",
        (str(result.run.table_path("traces")), "bold"), "\n",
        f"studies: {c['study_in']} in = {c['study_out']} traces + {c['study_quarantined']} quarantined",
    )
    parts: list[Any] = [head]
    if result.injected:
        tab = Table(title="Injected draft errors", title_justify="left")
        tab.add_column("kind")
        tab.add_column("traces", justify="right")
        for kind, n in sorted(result.injected.items()):
            tab.add_row(kind, str(n))
        tab.add_row("none (re-check only)", str(t.height - sum(result.injected.values())))
        parts.append(tab)
    if t.height and int(t["input_tokens"].sum()):
        parts.append(Text(f"tokens: {int(t['input_tokens'].sum()):,} in, {int(t['output_tokens'].sum()):,} out; "
                          f"cost ${float(t['cost_usd'].sum()):.4f}"))
    parts.append(_quarantine_table(result))
    return Group(*parts)


def estimate_table(estimate: Any) -> Table:
    """The --dry-run projection."""
    est, stages = estimate
    t = Table(title="Dry run: nothing was sent", title_justify="left")
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_row("requests (first stage)" if stages > 1 else "requests", f"{est.requests:,}")
    t.add_row("already cached", f"{est.cached:,}")
    t.add_row("to send", f"{est.to_send:,}")
    t.add_row("images attached", f"{est.images:,}")
    t.add_row("projected input tokens", f"{est.input_tokens:,}")
    t.add_row("projected output tokens", f"{est.output_tokens:,} ({est.output_basis})")
    cost = "unknown (no price for: " + ", ".join(est.unpriced_models) + ")" if est.cost_usd is None \
        else f"${est.cost_usd:,.2f}"
    t.add_row("projected cost", cost)
    if stages > 1:
        t.caption = (f"multi-stage: {stages} requests per study; later stages depend on earlier answers, "
                     f"so expect about {stages}× these figures")
    return t
