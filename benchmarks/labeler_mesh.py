"""Agreement of the labeler with the MeSH-derived labels of real IU-Xray reports.

    python benchmarks/labeler_mesh.py                       # the 964-report development slice
    python benchmarks/labeler_mesh.py --root DIR --show 20  # another Kaggle-layout copy; print disagreements
    python benchmarks/labeler_mesh.py --studies-out S.parquet       # the indexed studies, for another labeler
    python benchmarks/labeler_mesh.py --predictions P.parquet       # score that labeler's labels instead

The last two separate a change of the labeler from a change of the reference: label ``S.parquet`` (its findings
and impression columns) with an older checkout's labeler in its own environment, write ``study_id`` and the 14
label columns to ``P.parquet``, and score it here against the current MeSH mapping.

Reads the reports with datakit's IU-Xray reader (``datakit.ingest.iu_xray``, Kaggle CSV layout), whose labels
come from the MeSH terms through ``datakit/ingest/data/mesh_to_chexpert.csv``, and labels the findings +
impression text of each report with the labeler (IU reports are short; the impression alone often says only
"no acute disease").

Convention: MeSH lists what is *present* (plus "normal" for a normal study), so only positive calls are
compared: a label is positive for MeSH when the mapping gives 1, and for the labeler when it gives 1.
Uncertain (-1) counts as not positive on both sides in the main table (the R2Gen CE convention,
zhjohnchan/R2Gen compute_ce.py); a second table counts uncertain as positive on both sides (F1CheXbert). Studies whose
MeSH says "No Indexing" (not coded) are left out; a study whose terms map to none of the 14 ("Calcified
Granuloma" alone, say) stays in with no positive. Per label: precision, recall, F1 of the labeler's positives
against MeSH's; then macro F1 over the labels with at least one MeSH positive (with and without No Finding,
whose MeSH "normal" also excludes incidental findings the CheXpert rule ignores), and micro F1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from datakit.config import IngestConfig
from datakit.ingest.base import ReadContext
from datakit.ingest.iu_xray_csv import KaggleCsv
from datakit.reading.labeler import Labeler, label_studies
from datakit.rundir import Quarantine
from datakit.tables import LABEL_COLUMNS

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO / "tests" / "data" / "iu-xray-reports-dev", Path("/work/shared/data/iu-xray-reports-dev")]


def read_studies(root: Path) -> pl.DataFrame:
    """The studies table of a Kaggle-layout IU-Xray folder whose images are absent (a text-only copy).

    The reader wants a folder of PNGs; a temporary copy of the two CSVs with a one-file ``images/`` folder
    satisfies it, and the images it lists are set aside as missing, which does not touch the studies.
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("indiana_reports.csv", "indiana_projections.csv"):
            shutil.copyfile(root / name, work / name)
        (work / "images").mkdir()
        (work / "images" / "placeholder.png").write_bytes(b"")
        ctx = ReadContext(root=work, config=IngestConfig(), quarantine=Quarantine("ingest"))
        return KaggleCsv().read(ctx).studies


def scores(truth: pl.DataFrame, pred: pl.DataFrame, positive: tuple[int, ...]) -> list[dict]:
    """Per-label counts and P/R/F1 of ``pred`` against ``truth`` (both: label columns, same row order)."""
    rows = []
    for col in LABEL_COLUMNS:
        t = truth.get_column(col).is_in(positive).fill_null(False)
        p = pred.get_column(col).is_in(positive).fill_null(False)
        tp = int((t & p).sum())
        fp = int((~t & p).sum())
        fn = int((t & ~p).sum())
        prec = tp / (tp + fp) if tp + fp else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        rows.append(
            {
                "label": col,
                "mesh_pos": tp + fn,
                "labeler_pos": tp + fp,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": prec,
                "recall": rec,
                "f1": f1,
            }
        )
    return rows


def table(title: str, rows: list[dict]) -> str:
    out = [
        title,
        f"{'label':28} {'MeSH+':>6} {'lab+':>6} {'TP':>5} {'FP':>5} {'FN':>5} {'P':>6} {'R':>6} {'F1':>6}",
    ]
    for r in rows:
        out.append(
            f"{r['label']:28} {r['mesh_pos']:6d} {r['labeler_pos']:6d} "
            f"{r['tp']:5d} {r['fp']:5d} {r['fn']:5d} "
            f"{r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f}"
        )
    scored = [r for r in rows if r["mesh_pos"] > 0]
    macro = sum(r["f1"] for r in scored) / len(scored)
    findings = [r for r in scored if r["label"] != "no_finding"]
    macro_findings = sum(r["f1"] for r in findings) / len(findings)
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    out.append(f"macro F1 over the {len(findings)} findings with MeSH positives (No Finding left out): "
               f"{macro_findings:.3f}")
    out.append(
        f"macro F1 over {len(scored)} labels with MeSH positives: {macro:.3f}   "
        f"micro P/R/F1: {tp / (tp + fp):.3f} / {tp / (tp + fn):.3f} / {2 * tp / (2 * tp + fp + fn):.3f}"
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="Kaggle-layout IU-Xray folder")
    parser.add_argument("--show", type=int, default=0, help="print up to N disagreeing reports per label")
    parser.add_argument("--label", default=None, help="only show disagreements of this label column")
    parser.add_argument("--studies-out", type=Path, default=None, help="write the indexed studies (parquet)")
    parser.add_argument("--predictions", type=Path, default=None,
                        help="parquet of study_id + label columns to score instead of the labeler")
    args = parser.parse_args()
    root = args.root or next((p for p in CANDIDATES if (p / "indiana_reports.csv").is_file()), None)
    if root is None:
        sys.exit("no IU-Xray development data found; pass --root")
    studies = read_studies(root)
    mesh = pl.read_csv(root / "indiana_reports.csv", columns=["uid", "MeSH"], infer_schema=False)
    not_indexed = set(
        mesh.filter(pl.col("MeSH").fill_null("").str.contains("(?i)no indexing"))
        .get_column("uid")
        .str.strip_chars()
        .to_list()
    )
    indexed = studies.filter(~pl.col("study_id").is_in(sorted(not_indexed)))
    if args.studies_out:
        indexed.write_parquet(args.studies_out)
    t0 = time.perf_counter()
    labeler = Labeler()
    labels = label_studies(indexed, sections="findings+impression", labeler=labeler, workers=1)
    wall = time.perf_counter() - t0
    if args.predictions:
        given = pl.read_parquet(args.predictions)
        missing = indexed.select("study_id").join(given, on="study_id", how="anti").height
        if missing or given["study_id"].n_unique() != given.height:
            sys.exit(f"{args.predictions}: {missing} indexed studies have no row, or a study has two; write one "
                     "row per study of --studies-out")
        labels = indexed.select("study_id").join(given, on="study_id", how="left", maintain_order="left")
        print(f"scoring the labels of {args.predictions}, not this checkout's labeler")
    truth = indexed.select(LABEL_COLUMNS)
    pred = labels.select(LABEL_COLUMNS)
    print(
        f"IU-Xray reports: {studies.height} read from {root} (reports without findings and impression are "
        f"set aside by the reader), {indexed.height} indexed by MeSH ({studies.height - indexed.height} "
        f"'No Indexing' left out); labelled in {wall:.2f} s (labeler built in the same time)"
    )
    print(
        "text labelled: findings + impression; only positive calls are compared "
        "(MeSH lists what is present)\n"
    )
    print(table("uncertain (-1) counted as not positive on both sides", scores(truth, pred, (1,))))
    print()
    print(table("uncertain (-1) counted as positive on both sides", scores(truth, pred, (1, -1))))
    if args.show:
        texts = indexed.select("study_id", "findings", "impression").to_dicts()
        for col in [args.label] if args.label else LABEL_COLUMNS:
            t = truth.get_column(col).to_list()
            p = pred.get_column(col).to_list()
            shown = 0
            for i, (a, b) in enumerate(zip(t, p, strict=True)):
                if (a == 1) != (b == 1) and shown < args.show:
                    shown += 1
                    row = texts[i]
                    text = "\n\n".join(x for x in (row["findings"], row["impression"]) if x)
                    why = [(m.phrase, m.status, m.cue) for m in labeler.explain(text) if m.label == col]
                    print(f"\n[{col}] study {row['study_id']}: MeSH {a} labeler {b} {why}\n  {text}")


if __name__ == "__main__":
    main()
