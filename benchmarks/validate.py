"""Validation at full MIMIC-CXR scale.

    python benchmarks/validate.py [--studies 227835] [--images 377110] [--repeat 3] [--workers N]

1. Makes (once, cached under benchmarks/_work/) the MIMIC-CXR-JPG-shaped synthetic tree (benchmarks/synth.py),
   then a run directory from it: `datakit ingest --no-convert`, `datakit retrieve`, `datakit annotate` with
   the offline teacher. Each step runs only when its table is missing (delete the run folder to start over).
2. Times `datakit validate --run RUN --json` in a subprocess, --repeat times: wall time, CPU time and peak
memory
   of the whole process tree (workers included), and the seconds of each check from the command's own summary.
   Target (issue #5): all 227,835 traces in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import measure, table  # noqa: E402
from synth import make_tree  # noqa: E402

WORK = HERE / "_work"


def _step(datakit: str, args: list[str], env: dict) -> dict:
    m = measure([datakit, *args], env=env)
    if m["rc"] != 0:
        print(m["output"])
        raise SystemExit(f"`datakit {' '.join(args)}` failed with exit code {m['rc']}")
    return m


def prepare(tree: Path, run: Path, datakit: str, env: dict) -> None:
    """The run directory up to traces.parquet, made only where missing."""
    steps = [
        ("studies.parquet", ["ingest", str(tree), "--run", str(run), "--no-convert"]),
        ("knowledge.parquet", ["retrieve", "--run", str(run)]),
        ("traces.parquet", ["annotate", "--run", str(run), "--no-progress"]),
    ]
    for output, args in steps:
        if not (run / output).is_file():
            print(f"datakit {args[0]} ... ", end="", flush=True)
            m = _step(datakit, args, env)
            print(f"{m['wall_s']:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=227_835)
    ap.add_argument("--images", type=int, default=377_110)
    ap.add_argument("--subjects", type=int, default=64_588)
    ap.add_argument("--repeat", type=int, default=3, help="validate runs; the table shows min / median / max")
    ap.add_argument("--workers", type=int, default=None, help="validate.workers (default: all cores)")
    args = ap.parse_args()

    tree = WORK / ("mimic-full" if args.studies == 227_835 else f"mimic-{args.studies}")
    if not (tree / "mimic-cxr-2.0.0-split.csv.gz").exists():
        print(f"making the synthetic tree in {tree} (once) ...", flush=True)
        tree.mkdir(parents=True, exist_ok=True)
        make_tree(tree, args.studies, min(args.images, 2 * args.studies), min(args.subjects, args.studies))
    run = WORK / ("run-validate" if args.studies == 227_835 else f"run-validate-{args.studies}")
    datakit = str(Path(sys.executable).with_name("datakit"))
    env = {**os.environ, "COLUMNS": "120"}
    prepare(tree, run, datakit, env)

    cmd = ["validate", "--run", str(run), "--json"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    runs = []
    summary: dict = {}
    for _ in range(args.repeat):
        m = measure([datakit, *cmd], env=env)
        if m["rc"] not in (0, 4):
            print(m["output"])
            raise SystemExit(f"validate failed with exit code {m['rc']}")
        summary = json.loads(m["output"][m["output"].index("{") :])
        runs.append(m)

    def spread(key: str, fmt: str) -> str:
        values = sorted(r[key] for r in runs)
        return " / ".join(format(v, fmt) for v in (values[0], statistics.median(values), values[-1]))

    rows = [
        ("traces", f"{summary['traces']:,}"),
        (
            "passed / rejected / flagged",
            f"{summary['passed']:,} / {summary['rejected']:,} / {summary['flagged']:,}",
        ),
        ("wall s (min / median / max)", spread("wall_s", ".1f")),
        ("CPU s, process tree", spread("cpu_s", ".1f")),
        ("peak memory MB (PSS), process tree", spread("peak_rss_mb", ".0f")),
        ("cores", str(os.cpu_count())),
    ]
    rows += [(f"  {name} s (last run)", f"{sec:.1f}") for name, sec in summary["seconds"].items()]
    print(table("datakit validate, full-scale synthetic MIMIC-CXR (target: under 120 s on 2 cores)", rows))
    for check in summary["checks"]:
        if check["codes"]:
            print(f"{check['check']}: {check['codes']}")


if __name__ == "__main__":
    main()
