"""Speed of knowledge retrieval: batched BM25 queries, term matching, and the whole retrieve stage.

    python benchmarks/retrieval.py                   # 20,000 queries + the stage on 227,835 synthetic studies
    python benchmarks/retrieval.py --studies 20000   # a smaller stage run

Queries are report-like texts generated from the knowledge base's own terms in sentence frames a radiologist
might write (seeded, so every run measures the same text). Nothing here reads real reports.
Also prints recall@1 / recall@3 on the held-out phrase set (tests/retrieve/data/retrieval_heldout.yaml).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml
from rich.console import Console
from rich.table import Table

from datakit import tables
from datakit.knowledge import bm25
from datakit.knowledge.kb import load_kb
from datakit.knowledge.tree import get_matcher
from datakit.retrieve import retrieve
from datakit.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]

POSITIVE = [
    "There is {sev} {side} {term}.",
    "{Sev} {term} at the {side} base.",
    "Findings compatible with {term}.",
    "{Term} is again seen, {change}.",
    "New {side} {term}.",
    "Possible {term}, clinical correlation recommended.",
    "{Term} in the {side} {zone} zone.",
    "Interval development of {term}.",
]
NEGATIVE = [
    "No {term}.",
    "There is no evidence of {term}.",
    "No definite {term} is identified.",
    "Without {term}.",
]
NORMAL = [
    "The lungs are clear.",
    "Heart size is normal.",
    "The cardiomediastinal silhouette is within normal limits.",
    "No acute osseous abnormality.",
    "The visualized upper abdomen is unremarkable.",
    "No free air below the diaphragm.",
]


def make_reports(kb, n: int, seed: int = 0) -> list[str]:
    """``n`` report-like texts of 3–7 sentences built from the knowledge base's terms."""
    rng = random.Random(seed)
    terms = [(e.id, t) for e in sorted(kb.entries.values(), key=lambda e: e.id) if e.region for t in e.terms]
    sev = ["small", "mild", "moderate", "large", "trace", "minimal"]
    side = ["right", "left", "bilateral", "right-sided", "left-sided"]
    out = []
    for _ in range(n):
        sentences = []
        for _ in range(rng.randint(3, 7)):
            roll = rng.random()
            _, term = rng.choice(terms)
            if roll < 0.45:
                frame = rng.choice(POSITIVE)
            elif roll < 0.8:
                frame = rng.choice(NEGATIVE)
            else:
                sentences.append(rng.choice(NORMAL))
                continue
            s, d = rng.choice(sev), rng.choice(side)
            sentences.append(
                frame.format(
                    sev=s,
                    Sev=s.capitalize(),
                    side=d,
                    term=term,
                    Term=term.capitalize(),
                    change=rng.choice(["unchanged", "slightly larger", "improved"]),
                    zone=rng.choice(["upper", "mid", "lower"]),
                )
            )
        out.append(" ".join(sentences))
    return out


def synthetic_studies(reports: list[str], seed: int = 0) -> pl.DataFrame:
    """A studies table (tables.Studies) around the reports, with a few random labels."""
    rng = random.Random(seed)
    n = len(reports)
    half = [r.split(". ") for r in reports]
    data: dict[str, list] = {
        "study_id": [f"5{i:07d}" for i in range(n)],
        "subject_id": [f"1{i // 3:07d}" for i in range(n)],
        "dataset": ["mimic-cxr"] * n,
        "source_format": ["synthetic"] * n,
        "split": ["train"] * n,
        "split_source": ["official"] * n,
        "findings": [". ".join(h[: max(1, len(h) - 1)]) for h in half],
        "impression": [h[-1] for h in half],
        "report_text": reports,
        "n_images": [2] * n,
    }
    for column in ("pleural_effusion", "cardiomegaly", "support_devices", "edema", "no_finding"):
        data[column] = [rng.choice([None, None, 0, 1, -1]) for _ in range(n)]
    return tables.conform(pl.DataFrame(data), tables.Studies)


def heldout_recall(kb) -> tuple[int, float, float]:
    phrases = yaml.safe_load((REPO / "tests/retrieve/data/retrieval_heldout.yaml").read_text())["phrases"]
    results = bm25.get_index(kb).search_many([p["text"] for p in phrases], k=3)
    pairs = list(zip(results, phrases, strict=True))
    r1 = sum(bool(r) and r[0].entry_id == p["expect"] for r, p in pairs) / len(pairs)
    r3 = sum(p["expect"] in [h.entry_id for h in r] for r, p in pairs) / len(pairs)
    return len(phrases), r1, r3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument(
        "--studies", type=int, default=227_835, help="rows of the synthetic stage run; 0 skips it"
    )
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args(argv)
    console = Console(width=150)
    table = Table(title="datakit retrieval benchmark", title_justify="left")
    for col, just in (("measure", "left"), ("size", "right"), ("seconds", "right"), ("rate", "right")):
        table.add_column(col, justify=just)

    t0 = time.perf_counter()
    kb = load_kb()
    index, matcher = bm25.get_index(kb), get_matcher(kb)
    table.add_row(
        "load knowledge + build BM25 index + term matcher",
        f"{len(kb)} entries",
        f"{time.perf_counter() - t0:.3f}",
        "",
    )

    queries = make_reports(kb, args.queries)
    words = sum(len(q.split()) for q in queries) / len(queries)
    bm25._word_tokens.cache_clear()
    t0 = time.perf_counter()
    index.search_many(queries, k=args.k)
    dt = time.perf_counter() - t0
    table.add_row(
        f"BM25 batched, top-{args.k} (tokenize + score), cold token cache",
        f"{len(queries):,} queries (~{words:.0f} words)",
        f"{dt:.2f}",
        f"{len(queries) / dt:,.0f} q/s",
    )
    t0 = time.perf_counter()
    index.search_many(queries, k=args.k)
    dt = time.perf_counter() - t0
    table.add_row(
        "BM25 batched, warm token cache",
        f"{len(queries):,} queries",
        f"{dt:.2f}",
        f"{len(queries) / dt:,.0f} q/s",
    )
    t0 = time.perf_counter()
    matcher.mentions_many(queries)
    dt = time.perf_counter() - t0
    table.add_row(
        "term matching (tree lookup)", f"{len(queries):,} texts", f"{dt:.2f}", f"{len(queries) / dt:,.0f}/s"
    )

    if args.studies:
        studies = synthetic_studies(make_reports(kb, args.studies, seed=1))
        t0 = time.perf_counter()
        hits = retrieve(studies, kb, k=args.k)
        dt = time.perf_counter() - t0
        table.add_row(
            "retrieve() on a studies table (validate, 3 lookups, merge, validate)",
            f"{studies.height:,} studies → {hits.height:,} hits",
            f"{dt:.1f}",
            f"{studies.height / dt:,.0f} studies/s",
        )
        with tempfile.TemporaryDirectory() as tmp:
            run = RunDir.create(tmp)
            run.write_table("studies", studies)
            import datakit.retrieve

            t0 = time.perf_counter()
            datakit.retrieve.run(run)
            dt = time.perf_counter() - t0
            table.add_row(
                "whole stage: datakit.retrieve.run (read, retrieve, write, manifest)",
                f"{studies.height:,} studies",
                f"{dt:.1f}",
                f"{studies.height / dt:,.0f} studies/s",
            )
            t0 = time.perf_counter()
            skipped = datakit.retrieve.run(run).skipped
            table.add_row(
                "same stage again (unchanged inputs: skipped)" if skipped else "same stage again",
                f"{studies.height:,} studies",
                f"{time.perf_counter() - t0:.2f}",
                "",
            )

    n, r1, r3 = heldout_recall(kb)
    table.add_row("held-out phrases recall@1 / recall@3", f"{n} phrases", "", f"{r1:.3f} / {r3:.3f}")
    console.print(table)
    console.print(f"python {sys.version.split()[0]}, polars {pl.__version__}")


if __name__ == "__main__":
    main()
