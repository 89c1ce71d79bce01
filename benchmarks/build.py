"""`datakit build` at full MIMIC-CXR scale: wall time and peak memory per stage and in total, then a rebuild.

    python benchmarks/build.py [--studies 227835] [--images 377110] [--formats trl,llava]

1. Makes (once, cached under benchmarks/_work/) the MIMIC-CXR-JPG-shaped synthetic tree (benchmarks/synth.py)
   and a datakit.toml for it: offline teacher, images referenced in place (`ingest.images.convert = false`).
2. A fresh run folder, then `datakit build CONFIG --only STAGE` for each stage in order, each in its own process
   measured for wall time, CPU time and peak memory (PSS) of the whole process tree (workers included).
3. `datakit build CONFIG` again with nothing changed: every stage should say it is unchanged and skip.
   Target (issue 17): the whole build under 10 minutes and 4 GB on 2 cores; the rebuild in seconds.
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
from export import tiny_jpeg  # noqa: E402
from synth import make_tree  # noqa: E402

WORK = HERE / "_work"
STAGES = ("ingest", "retrieve", "annotate", "validate", "export")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=227_835)
    ap.add_argument("--images", type=int, default=377_110)
    ap.add_argument("--subjects", type=int, default=64_588)
    ap.add_argument("--formats", default="trl,llamafactory,swift,qwen-vl,llava", help="export formats")
    args = ap.parse_args()

    full = args.studies == 227_835
    # the same tree as benchmarks/export.py: every image file one small real JPEG, so export's checks open them
    tree = WORK / ("mimic-jpeg-full" if full else f"mimic-jpeg-{args.studies}")
    if not (tree / "mimic-cxr-2.0.0-split.csv.gz").exists():
        print(f"making the synthetic tree in {tree} (once) ...", flush=True)
        tree.mkdir(parents=True, exist_ok=True)
        make_tree(tree, args.studies, min(args.images, 2 * args.studies), min(args.subjects, args.studies),
                  image_payload=tiny_jpeg())
    run = WORK / ("run-build" if full else f"run-build-{args.studies}")
    shutil.rmtree(run, ignore_errors=True)
    formats = ", ".join(f'"{f}"' for f in args.formats.split(","))
    config = WORK / f"build-{args.studies}.toml"
    config.write_text(f'source = "{tree}"\nrun = "{run}"\n\n[ingest]\nformat = "mimic-cxr-jpg"\n\n'
                      f'[ingest.images]\nconvert = false\n\n[teacher]\nkind = "offline"\n\n'
                      f"[export]\nformats = [{formats}]\n")
    datakit = str(Path(sys.executable).with_name("datakit"))
    env = {**os.environ, "COLUMNS": "120"}

    rows: list[tuple[str, str]] = []
    total_wall = total_cpu = peak = 0.0
    for stage in STAGES:
        print(f"{stage} ... ", end="", flush=True)
        m = measure([datakit, "build", str(config), "--only", stage, "--no-progress"], env=env)
        if m["rc"] != 0:
            print(m["output"][-3000:])
            raise SystemExit(f"`datakit build --only {stage}` failed with exit code {m['rc']}")
        print(f"{m['wall_s']:.1f} s")
        rows.append((f"{stage}: wall s / CPU s / peak MB", f"{m['wall_s']:.1f} / {m['cpu_s']:.1f} / "
                                                          f"{m['peak_rss_mb']:.0f}"))
        total_wall += m["wall_s"]
        total_cpu += m["cpu_s"]
        peak = max(peak, m["peak_rss_mb"])
    rows.append(("whole build: wall s / CPU s / peak MB", f"{total_wall:.1f} / {total_cpu:.1f} / {peak:.0f}"))
    print("rebuild with nothing changed ... ", end="", flush=True)
    again = measure([datakit, "build", str(config), "--no-progress"], env=env)
    skipped = again["output"].count("unchanged since it last finished")
    print(f"{again['wall_s']:.1f} s")
    rows.append(("rebuild: wall s / peak MB", f"{again['wall_s']:.1f} / {again['peak_rss_mb']:.0f}"))
    rows.append(("rebuild: stages skipped", f"{skipped} of {len(STAGES)}"))
    rows.append(("studies / cores", f"{args.studies:,} / {os.cpu_count()}"))
    load = os.getloadavg()
    rows.append(("load average at the end (1 / 5 / 15 min)", f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"))
    print(table("datakit build, synthetic MIMIC-CXR, offline teacher, images in place "
                "(target: < 600 s, < 4 GB on 2 cores)", rows))


if __name__ == "__main__":
    main()
