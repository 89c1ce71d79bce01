"""Export at full MIMIC-CXR scale: all five formats for 227,835 studies, images referenced in place.

    python benchmarks/export.py [--studies 227835] [--images 377110] [--repeat 1] [--workers N] [--run RUN]

1. Makes (once, cached under benchmarks/_work/) a MIMIC-CXR-JPG-shaped synthetic tree whose image files are one
   small real JPEG (the export checks open every image), then a run directory from it: `datakit ingest
   --no-convert`, `retrieve`, `annotate` (offline teacher), `validate`; each only when its table is missing.
2. Times `datakit export --run RUN --force` with every format in a subprocess, --repeat times (wall, CPU and
   peak memory of the process tree, workers included), then each format alone once, for the figure per format.
   Target (issue #16): all five formats in under 60 s and 2 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import io
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
FORMATS = ["trl", "llamafactory", "swift", "qwen-vl", "llava"]


def tiny_jpeg() -> bytes:
    """A 64×64 grey JPEG: what every synthetic image file holds."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buf, format="JPEG", quality=50)
    return buf.getvalue()


def _step(datakit: str, args: list[str], env: dict) -> dict:
    m = measure([datakit, *args], env=env)
    if m["rc"] not in (0, 4):
        print(m["output"])
        raise SystemExit(f"`datakit {' '.join(args)}` failed with exit code {m['rc']}")
    return m


def prepare(tree: Path, run: Path, datakit: str, env: dict) -> None:
    """The run directory up to validation.parquet, made only where missing."""
    steps = [
        ("studies.parquet", ["ingest", str(tree), "--run", str(run), "--no-convert"]),
        ("knowledge.parquet", ["retrieve", "--run", str(run)]),
        ("traces.parquet", ["annotate", "--run", str(run), "--no-progress"]),
        ("validation.parquet", ["validate", "--run", str(run), "--json"]),
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
    ap.add_argument("--repeat", type=int, default=1, help="all-format runs; the table shows min / median / max")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--run", type=Path, default=None,
                    help="an existing validated run (e.g. benchmarks/build.py's run-build) instead of making one")
    ap.add_argument("--per-format", action=argparse.BooleanOptionalAction, default=False,
                    help="also time each format alone (five more runs)")
    args = ap.parse_args()

    suffix = "full" if args.studies == 227_835 else str(args.studies)
    tree = WORK / f"mimic-jpeg-{suffix}"
    if args.run is None and not (tree / "mimic-cxr-2.0.0-split.csv.gz").exists():
        print(f"making the synthetic tree in {tree} (once) ...", flush=True)
        tree.mkdir(parents=True, exist_ok=True)
        make_tree(tree, args.studies, min(args.images, 2 * args.studies), min(args.subjects, args.studies),
                  image_payload=tiny_jpeg())
    run = args.run or WORK / f"run-export-{suffix}"
    datakit = str(Path(sys.executable).with_name("datakit"))
    env = {**os.environ, "COLUMNS": "120"}
    if args.workers:
        env["DATAKIT_EXPORT__WORKERS"] = str(args.workers)
    if args.run is None:
        prepare(tree, run, datakit, env)

    def export(formats: list[str]) -> dict:
        return _step(datakit, ["export", "--run", str(run), "--force", "--formats", ",".join(formats)], env)

    runs = [export(FORMATS) for _ in range(args.repeat)]
    print(runs[-1]["output"])
    walls = sorted(r["wall_s"] for r in runs)
    rows = [
        ("all five formats, wall s (min / median / max)",
         " / ".join(f"{v:.1f}" for v in (walls[0], statistics.median(walls), walls[-1]))),
        ("  CPU s, process tree", " / ".join(f"{r['cpu_s']:.1f}" for r in runs)),
        ("  peak memory MB (PSS), process tree", " / ".join(f"{r['peak_rss_mb']:.0f}" for r in runs)),
    ]
    manifest = json.loads((run / "manifest.json").read_text())["stages"]["export"]
    rows.append(("  worker seconds, summed over workers (last run)", ""))
    for part, sec in manifest["stats"]["worker_seconds"].items():
        rows.append((f"    {part}", f"{sec:.1f}"))
    if args.per_format:
        for name in FORMATS:
            m = export([name])
            rows.append((f"{name} alone: wall s / peak MB", f"{m['wall_s']:.1f} / {m['peak_rss_mb']:.0f}"))
    rows.append(("cores", str(len(os.sched_getaffinity(0)))))
    print(table("datakit export, full-scale synthetic MIMIC-CXR (target: under 60 s and 2 GB on 2 cores)", rows))


if __name__ == "__main__":
    main()
