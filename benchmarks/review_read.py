"""A reviewer's read of accepted traces: a sheet to judge, and the score of the verdicts.

    python benchmarks/review_read.py sheet --run RUN --n 80 --seed 0 > sheet.md
    python benchmarks/review_read.py sheet --run RUN --n 80 --seed 1 --exclude benchmarks/reads/*.jsonl > sheet.md
    python benchmarks/review_read.py sheet --run OLD_RUN --studies sheet.md > base.md   # a paired read
    python benchmarks/review_read.py score verdicts.jsonl [more.jsonl ...]

The automatic figures of ``faithfulness.py`` use a judge of their own; this is the other instrument, the one the
target "at most 1 wrong statement per 100" is stated in: a person (or a reviewer told to read as a radiologist)
takes a seeded sample of accepted traces, reads each study's report and judges every statement of the think text
the model will be trained on. ``sheet`` numbers those statements (one per perception item, reasoning step,
re-checked list, correction and summary) beside the report; the reviewer writes one JSON line per statement,

    {"study_id": "1013", "n": 3, "verdict": "ok" | "wrong" | "unsupported", "pattern": "...", "why": "..."}

and one per finding the report states that no statement carries, ``{"study_id": ..., "n": "missed", ...}``.
``wrong`` is a statement a radiologist would correct (a finding, status, side, grade or hedge the report does not
give, a normal claim the report contradicts, a reasoning step that is false); ``unsupported`` is a pertinent
negative or normal claim the report neither makes nor covers. ``score`` prints wrong (and missed) per 100
statements, unsupported per 100, the share of traces holding an error, and the counts by pattern.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

import polars as pl

from datakit.trace import REGION_NAMES


def statements(trace: dict) -> list[tuple[str, str]]:
    """(part, text) for every statement of the think text, in the order the model reads them."""
    out = []
    for item in trace["perception"]:
        region = REGION_NAMES.get(item["region"], item["region"])
        out.append(("perception", f"{region}: {item['evidence']}  [{item['finding']} · {item['status']}"
                    f"{' · ' + item['laterality'] if item['laterality'] not in (None, 'none') else ''}"
                    f"{' · ' + item['severity'] if item.get('severity') else ''}]"))
    for step in trace["reasoning"]:
        out.append(("reasoning", f"{step['observation']} → {step['inference']}"))
    refl = trace["reflection"]
    out.append(("reflection", f"Re-checked: {'; '.join(refl['checked'])}."))
    for c in refl["corrections"]:
        out.append(("correction", f"({c['kind']}) {c['finding']}: {json.dumps(c['before'])} → "
                    f"{json.dumps(c['after'])}. {c['note']}"))
    out.append(("reflection", refl["summary"]))
    return out


def sheet(run: Path, n: int, seed: int, exclude: set[str] = frozenset(), only: set[str] | None = None) -> str:
    traces = pl.read_parquet(run / "traces.parquet", columns=["study_id", "trace_json", "injected_error"])
    studies = pl.read_parquet(run / "studies.parquet", columns=["study_id", "findings", "impression"])
    rejected = set()
    if (run / "validation.parquet").is_file():
        val = pl.read_parquet(run / "validation.parquet")
        rejected = set(val.filter(~pl.col("passed") & (pl.col("severity") == "error"))["study_id"].to_list())
    # studies an earlier sheet held are left out, so a second read after fixes is of traces nobody tuned against
    accepted = traces.filter(~pl.col("study_id").is_in(list(rejected | set(exclude)))).sort("study_id")
    if only is not None:  # the studies of another sheet (a paired read of an older commit's traces)
        pick = [i for i, sid in enumerate(accepted["study_id"].to_list()) if sid in only]
    else:
        pick = sorted(random.Random(seed).sample(range(accepted.height), min(n, accepted.height)))
    report = {r["study_id"]: r for r in studies.to_dicts()}
    parts = [f"# Review sheet: {len(pick)} accepted traces of {run} (seed {seed})\n"]
    for i in pick:
        row = accepted.row(i, named=True)
        rep = report[row["study_id"]]
        trace = json.loads(row["trace_json"])
        parts.append(f"## study {row['study_id']}\n")
        parts.append(f"FINDINGS: {rep['findings'] or ''}\nIMPRESSION: {rep['impression'] or ''}\n")
        if row["injected_error"]:
            parts.append(f"(draft error injected on purpose, for the reflection to correct: {row['injected_error']})\n")
        for k, (part, text) in enumerate(statements(trace), 1):
            parts.append(f"{k}. [{part}] {text}")
        parts.append("")
    return "\n".join(parts)


def score(paths: list[Path]) -> str:
    rows = [json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    judged = [r for r in rows if r.get("n") != "missed"]
    missed = [r for r in rows if r.get("n") == "missed"]
    verdicts = Counter(r["verdict"] for r in judged)
    studies = {r["study_id"] for r in rows}
    bad = {r["study_id"] for r in judged if r["verdict"] == "wrong"} | {r["study_id"] for r in missed}
    total = len(judged)
    lines = [
        ("traces read", f"{len(studies)}"),
        ("statements judged", f"{total}"),
        ("wrong per 100 statements", f"{100 * verdicts['wrong'] / max(1, total):.2f} ({verdicts['wrong']})"),
        ("missed findings per 100 statements", f"{100 * len(missed) / max(1, total):.2f} ({len(missed)})"),
        ("wrong + missed per 100", f"{100 * (verdicts['wrong'] + len(missed)) / max(1, total):.2f}"),
        ("unsupported negatives per 100", f"{100 * verdicts['unsupported'] / max(1, total):.2f} "
                                          f"({verdicts['unsupported']})"),
        ("traces with a wrong or missed statement", f"{len(bad)} of {len(studies)}"),
    ]
    width = max(len(a) for a, _ in lines)
    out = [f"{a:<{width}}  {b}" for a, b in lines]
    patterns = Counter(r.get("pattern") or "?" for r in judged + missed if r in missed or r["verdict"] != "ok")
    if patterns:
        out.append("\nby pattern:")
        out += [f"  {count:>4}  {name}" for name, count in patterns.most_common()]
    return "\n".join(out)


def _studies_of(path: Path) -> set[str]:
    """The study ids a sheet (its "## study ID" headers) or a verdict file (JSON lines) names."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        return {str(json.loads(line)["study_id"]) for line in lines if line.strip()}
    return {line.split()[2] for line in lines if line.startswith("## study ")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet", help="write a review sheet of sampled accepted traces")
    s.add_argument("--run", type=Path, required=True)
    s.add_argument("--n", type=int, default=80)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--exclude", type=Path, nargs="*", default=[],
                   help="earlier sheets or verdict files (.jsonl) whose studies to leave out")
    s.add_argument("--studies", type=Path, default=None,
                   help="a sheet or verdict file: write the sheet of its studies instead of a sample (paired reads)")
    c = sub.add_parser("score", help="score reviewer verdicts (JSON lines)")
    c.add_argument("verdicts", type=Path, nargs="+")
    args = parser.parse_args()
    if args.cmd == "sheet":
        seen = set().union(*(_studies_of(p) for p in args.exclude))
        only = _studies_of(args.studies) if args.studies else None
        sys.stdout.write(sheet(args.run, args.n, args.seed, seen, only))
    else:
        print(score(args.verdicts))


if __name__ == "__main__":
    main()
