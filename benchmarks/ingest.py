"""Ingest at full MIMIC-CXR scale, and DICOM conversion throughput.

    python benchmarks/ingest.py [--studies 227835] [--images 377110] [--dicoms 500] [--skip-dicom]

1. Makes (once, cached under benchmarks/_work/) a MIMIC-CXR-JPG-shaped tree: 227,835 reports in the real layout,
   377,110 image files and the four CSVs (benchmarks/synth.py).
2. Runs `datakit ingest TREE --run RUN --no-convert` in a subprocess: reports, sections, CSVs, labels, splits,
   checks, tables — everything but pixels. Prints wall time, CPU time and peak memory of the process tree.
   Targets (issue #2): under 15 s wall and under 2 GB on 2 cores.
3. Converts --dicoms full-size (about 2500 × 2000, 12-bit) synthetic DICOMs and reports images/s and CPU use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import measure, table  # noqa: E402
from synth import make_tree  # noqa: E402

WORK = HERE / "_work"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=227_835)
    ap.add_argument("--images", type=int, default=377_110)
    ap.add_argument("--subjects", type=int, default=64_588)
    ap.add_argument("--dicoms", type=int, default=500)
    ap.add_argument("--skip-dicom", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="ingest runs; the table shows min / median / max")
    args = ap.parse_args()

    tree = WORK / f"mimic-{args.studies}"
    if args.studies == 227_835:
        tree = WORK / "mimic-full"
    if not (tree / "mimic-cxr-2.0.0-split.csv.gz").exists():
        print(f"making the synthetic tree in {tree} (once) ...", flush=True)
        tree.mkdir(parents=True, exist_ok=True)
        make_tree(tree, args.studies, args.images, min(args.subjects, args.studies))

    datakit = str(Path(sys.executable).with_name("datakit"))
    runs = []
    for _i in range(args.repeat):
        run = WORK / "run-ingest"
        shutil.rmtree(run, ignore_errors=True)
        m = measure([datakit, "ingest", str(tree), "--run", str(run), "--no-convert"],
                    env={**os.environ, "COLUMNS": "120"})
        if m["rc"] != 0:
            print(m["output"])
            raise SystemExit(f"ingest failed with exit code {m['rc']}")
        runs.append(m)
    walls = sorted(r["wall_s"] for r in runs)
    peaks = sorted(r["peak_rss_mb"] for r in runs)
    cpus = sorted(r["cpu_s"] for r in runs)
    mid = len(runs) // 2
    print(table(
        f"Ingest without pixels: {args.studies:,} studies, {args.images:,} images, {os.cpu_count()} cores",
        [
            ("wall s (min / median / max)", f"{walls[0]:.2f} / {walls[mid]:.2f} / {walls[-1]:.2f}   target < 15"),
            ("CPU s (median)", f"{cpus[mid]:.2f}"),
            ("peak memory MB (PSS), process tree (max)", f"{peaks[-1]:.0f}   target < 2048"),
            ("studies per second (median)", f"{args.studies / walls[mid]:,.0f}"),
        ],
    ))
    print()

    if not args.skip_dicom:
        from _dicom_bench import run_conversion_benchmark

        res = run_conversion_benchmark(WORK / "dicom-bench", n=args.dicoms)
        print(table(f"DICOM → PNG conversion: {args.dicoms} images of about 2500 × 2000, 12-bit",
                    [(k, f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in res.items()]))


if __name__ == "__main__":
    main()
