"""``datakit knowledge search|show|list|import`` and ``datakit retrieve``: thin commands over the library."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from datakit.cli.console import console

knowledge_app = typer.Typer(
    help="Look into the knowledge base: search, show, list; import finding models.", no_args_is_help=True
)

KnowledgeOpt = typer.Option(
    None, "--knowledge", help="A user knowledge folder (repeatable); extends the shipped one."
)
ConfigOpt = typer.Option(None, "--config", help="A datakit.toml to take knowledge.paths from.")


def _kb(knowledge: list[Path] | None, config: Path | None):
    from datakit.config import load_config
    from datakit.knowledge.kb import load_configured

    paths = [str(p) for p in knowledge] if knowledge else None
    return load_configured(load_config(config, overrides={"knowledge.paths": paths}))


def _label(entry) -> str:
    from datakit.tables import LABELS

    return LABELS.get(entry.chexpert, "") if entry.chexpert else ""


@knowledge_app.command()
def search(
    query: str = typer.Argument(..., help='Free text, e.g. "blunted costophrenic angle".'),
    k: int = typer.Option(5, "-k", "--top", min=1, help="How many entries to show."),
    knowledge: list[Path] | None = KnowledgeOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Rank knowledge entries for QUERY with BM25, and say why each was found."""
    from datakit.knowledge.bm25 import explain
    from datakit.knowledge.bm25 import search as bm25_search
    from datakit.knowledge.tree import get_matcher

    kb = _kb(knowledge, config)
    hits = bm25_search(kb, query, k)
    named = {m.entry_id: m.term for m in get_matcher(kb).mentions(query)}
    table = Table(title=f"Knowledge for {query!r}", title_justify="left")
    for col in ("#", "id", "name", "region", "label", "score", "why"):
        table.add_column(
            col, justify="right" if col in ("#", "score") else "left", no_wrap=col in ("id", "score")
        )
    for rank, hit in enumerate(hits, start=1):
        entry = kb.get(hit.entry_id)
        why = f"names {named[hit.entry_id]!r}" if hit.entry_id in named else ""
        words = ", ".join(explain(kb, query, hit.entry_id))
        why = "; ".join(x for x in (why, f"words: {words}" if words else "") if x)
        table.add_row(
            str(rank), entry.id, entry.name, entry.region or "—", _label(entry), f"{hit.score:.2f}", why
        )
    if not hits:
        console.print(Text(f"No entry matches {query!r}.", style="yellow"))
        return
    console.print(table)


@knowledge_app.command()
def show(
    entry_id: str = typer.Argument(..., metavar="ID", help="An entry id, e.g. pleural_effusion."),
    knowledge: list[Path] | None = KnowledgeOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Print one knowledge entry."""
    e = _kb(knowledge, config).get(entry_id)
    body = Text()
    head = [
        ("region", e.region or "— (whole study)"),
        ("CheXpert label", _label(e) or "—"),
        ("RadLex", e.radlex or "—"),
        ("laterality", "yes" if e.laterality else "no"),
        ("origin", e.origin + (f" (overrides {e.overrides})" if e.overrides else "")),
        ("file", e.path),
    ]
    for key, value in head:
        body.append(f"{key}: ", style="bold").append(f"{value}\n")
    body.append("\n").append(e.definition + "\n")
    for title, items in (
        ("Synonyms", [", ".join(e.synonyms)] if e.synonyms else []),
        ("Signs", e.signs),
        ("Differential", e.differential),
        ("Pitfalls", e.pitfalls),
        ("Severity terms", [", ".join(e.severity_terms)] if e.severity_terms else []),
        ("Other codes", [f"{c['system']} {c['code']}" for c in e.index_codes]),
        ("Sources", [s["title"] + (f" <{s['url']}>" if s.get("url") else "") for s in e.sources]),
    ):
        if items:
            body.append(f"\n{title}\n", style="bold")
            for item in items:
                body.append(f"  • {item}\n")
    body.append("\nLicence: ", style="bold").append(e.license)
    console.print(Panel(body, title=f"[bold]{e.name}[/bold] [dim]({e.id})[/dim]", title_align="left"))


@knowledge_app.command("list")
def list_entries(
    region: str | None = typer.Option(None, "--region", help="Only this perception-tree region."),
    knowledge: list[Path] | None = KnowledgeOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """List the knowledge entries by perception-tree region."""
    kb = _kb(knowledge, config)
    if region:
        kb.by_region(region)  # an unknown region raises, with the closest ids as hint
    regions = [region] if region else list(kb.regions)
    listed: set[str] = set()
    for rid in regions:
        reg = kb.regions[rid]
        table = Table(title=f"{reg.name} ({rid})", title_justify="left")
        for col in ("id", "name", "label", "origin"):
            table.add_column(col, no_wrap=col == "id")
        for e in kb.by_region(rid):
            listed.add(e.id)
            table.add_row(e.id, e.name, _label(e), e.origin)
        console.print(table)
    if not region:
        rest = [e for e in kb.entries.values() if e.id not in listed]
        if rest:
            console.print(Text("Not in a region: " + ", ".join(sorted(e.id for e in rest)), style="dim"))
        console.print(f"{len(kb)} entries in {len(kb.regions)} regions.")


@knowledge_app.command("import")
def import_models(
    path: Path = typer.Argument(
        ..., help="An Open Imaging Finding Model file (*.fm.json) or a folder of them."
    ),
    into: Path | None = typer.Option(
        None, "--into", help="User knowledge folder (default $DATAKIT_HOME/knowledge)."
    ),
) -> None:
    """Import Open Imaging Finding Models as user knowledge entries."""
    from datakit.knowledge.fm_import import import_finding_models

    result = import_finding_models(path, into)
    console.print(
        Text.assemble(
            ("Imported ", "bold"),
            f"{len(result.written)} of {result.found} finding models into ",
            (str(result.into / "findings"), "bold"),
        ),
        soft_wrap=True,
    )
    table = Table(title="Imported entries by region and CheXpert label", title_justify="left")
    table.add_column("region")
    table.add_column("entries", justify="right")
    for key, n in sorted(result.regions.items(), key=lambda kv: -kv[1]):
        table.add_row(key, str(n))
    labels = ", ".join(f"{k} {n}" for k, n in sorted(result.labels.items(), key=lambda kv: -kv[1]))
    table.caption = f"labels: {labels}" if labels else None
    if result.written:
        console.print(table)
    for s in result.skipped:
        console.print(Text(f"skipped {s.path}: {s.reason}", style="yellow"), soft_wrap=True)
    if result.written and not result.license_copied:
        console.print(
            Text(
                "No LICENSE file beside the models; the MIT notice was recorded in each entry.",
                style="yellow",
            )
        )


def register(app: typer.Typer) -> None:
    """Add ``knowledge`` (sub-commands) and ``retrieve`` to the root app."""
    app.add_typer(knowledge_app, name="knowledge")

    @app.command()
    def retrieve(
        run: Path = typer.Option(..., "--run", help="Run directory with studies.parquet."),
        k: int | None = typer.Option(None, "-k", "--top-k", min=1, help="BM25 hits per study (default 5)."),
        knowledge: list[Path] | None = KnowledgeOpt,
        config: Path | None = typer.Option(None, "--config", help="A datakit.toml (default: the run's)."),
        force: bool = typer.Option(False, "--force", help="Run even when nothing changed since the last retrieve."),
    ) -> None:
        """Retrieve knowledge for every study of RUN: knowledge.parquet + manifest counts."""
        import datakit.retrieve
        from datakit.stage import open_run

        # --knowledge is saved with the run: annotate and validate load the same knowledge base
        rd, cfg = open_run(run, config, overrides={
            "knowledge.top_k": k,
            "knowledge.paths": [str(Path(p).resolve()) for p in knowledge] if knowledge else None,
        })
        result = datakit.retrieve.run(rd, cfg, force=force)
        c = result.counts
        verb = "Unchanged, kept" if result.skipped else "Wrote"
        console.print(
            Text.assemble(
                (f"{verb} ", "bold"),
                (str(rd.table_path("knowledge")), "bold"),
                f" ({result.seconds:.1f} s)\n",
                f"studies: {c['study_in']} in = {c['study_with_hits']} with hits"
                f" + {c['study_without_hits']} without; {c['hits']} hits from {result.entries} entries"
                f" (label {c['hits_label']}, tree {c['hits_tree']}, "
                f"bm25 {c['hits_bm25']}; a hit can have several reasons)",
            ),
            soft_wrap=True,
        )
