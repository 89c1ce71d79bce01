"""How fast `datakit review` opens and answers on a full-scale run.

    python benchmarks/review.py [--run RUN] [--studies 227835] [--repeat 3] [--pipeline]

1. Makes (once, under benchmarks/_work/) a run of --studies studies. By default it scales up the demo run
   (ingested, retrieved, annotated and validated with the real commands): every table is sampled from the demo's
   rows with new study, subject and image ids, each trace made unique (no run-length or dictionary shortcut for
   the parquet reader), failed checks drawn at the rates of a real run (3% rejected, 6% flagged), images pointing
   at the demo's PNGs. --pipeline instead makes the run the validate benchmark uses (benchmarks/validate.py:
   synth tree, `datakit ingest --no-convert`, retrieve, annotate) and validates it: real, and an hour on 2 cores.
2. Starts a fresh Python process --repeat times; each opens the review app headless (Textual's pilot, 200×50),
   and reports the seconds from process start to the first study's detail on screen (imports, the index, the
   knowledge base, the first detail), then times moves, a page, the last study, and filters.
Target (issue 19): open a 227,835-study run in under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WORK = HERE / "_work"
FILTERS = ["status:rejected", "split:test", "label:pleural_effusion", "decision:none", "corrections:yes",
           "effusion", "split:val status:flagged"]


def child(run: str) -> None:
    """One cold open and a few interactions, timed in this process; prints JSON."""
    import psutil

    from datakit.review.app import ReviewApp
    from datakit.review.data import parse_query
    from datakit.review.widgets import StudyList

    out: dict = {"import_s": time.perf_counter() - T0, "import_cpu_s": time.process_time()}

    async def main() -> None:
        app = ReviewApp(run, reviewer="bench")
        out["index_s"] = time.perf_counter() - T0 - out["import_s"]
        out["index_cpu_s"] = time.process_time() - out["import_cpu_s"]
        async with app.run_test(size=(200, 50)) as pilot:
            while app.detail is None:
                await pilot.pause(0.01)
            out["open_s"] = time.perf_counter() - T0
            out["open_cpu_s"] = time.process_time()  # all threads; less dependent on what else the cores run
            out["traces"] = app.data.index.height
            studies = app.query_one(StudyList)
            t = time.perf_counter()
            for _ in range(20):
                await pilot.press("down")
            await pilot.pause()
            out["move_ms"] = (time.perf_counter() - t) / 20 * 1000
            t = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            out["page_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            await pilot.press("G")
            await pilot.pause()
            out["last_ms"] = (time.perf_counter() - t) * 1000
            assert studies.cursor == studies.frame.height - 1
            out["filters"] = {}
            for query in FILTERS:
                t = time.perf_counter()
                app._apply(parse_query(query))
                await app.workers.wait_for_complete()
                await pilot.pause()
                out["filters"][query] = ((time.perf_counter() - t) * 1000, studies.frame.height)
            await pilot.press("q")
        out["rss_mb"] = psutil.Process().memory_info().rss / 2**20

    asyncio.run(main())
    print("RESULT " + json.dumps(out))


def _datakit(*args: str) -> None:
    datakit = str(Path(sys.executable).with_name("datakit"))
    subprocess.run([datakit, *args], check=args[0] != "validate", capture_output=True)


def scaled_run(out: Path, n: int, seed: int = 0) -> None:
    """A run of ``n`` studies sampled from the validated demo run (made first, with the real commands)."""
    import shutil

    import numpy as np
    import polars as pl

    demo = WORK / "demo-run"
    if not (demo / "validation.parquet").is_file():
        shutil.rmtree(demo, ignore_errors=True)
        _datakit("ingest", str(HERE.parent / "examples" / "demo" / "mimic-cxr"), "--run", str(demo))
        _datakit("retrieve", "--run", str(demo))
        _datakit("annotate", "--run", str(demo), "--no-progress")
        _datakit("validate", "--run", str(demo))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo / "images", out / "images", dirs_exist_ok=True)
    shutil.copy(demo / "datakit.toml", out / "datakit.toml")
    rng = np.random.default_rng(seed)
    studies = pl.read_parquet(demo / "studies.parquet")
    pick = pl.DataFrame({"src": rng.integers(0, studies.height, n).astype(np.int64),
                         "study_id": (50_000_000 + rng.permutation(n)).astype(str),
                         "subject_id": (10_000_000 + rng.integers(0, max(n // 4, 1), n)).astype(str),
                         "split": rng.choice(["train", "val", "test"], n, p=[0.978, 0.008, 0.014])})
    src_ids = studies["study_id"]
    pick = pick.with_columns(pl.col("src").map_elements(lambda i: src_ids[i], return_dtype=pl.Utf8).alias("src_id"))
    pick = pick.with_row_index("i")

    def scale(table: str, extra: list[pl.Expr] | None = None) -> pl.DataFrame:
        t = pl.read_parquet(demo / f"{table}.parquet")
        columns = t.columns
        t = pick.select("i", "src_id", pl.col("study_id").alias("_new"), pl.col("subject_id").alias("_subj"),
                        pl.col("split").alias("_split")).join(t, left_on="src_id", right_on="study_id", how="inner")
        t = t.sort("i", maintain_order=True).with_columns(pl.col("_new").alias("study_id"), *(extra or []))
        if "subject_id" in columns:
            t = t.with_columns(pl.col("_subj").alias("subject_id"))
        if "split" in columns:
            t = t.with_columns(pl.col("_split").alias("split"))
        return t.select(columns)

    scale("studies").write_parquet(out / "studies.parquet", compression="zstd", statistics=True)
    unique = pl.lit(" (synthetic copy ") + pl.col("_new") + pl.lit(")")
    summary = pl.lit('"summary":"') + unique.str.slice(1) + pl.lit(". ")
    traces = scale("traces", [pl.col("trace_json").str.replace('"summary":"', summary, literal=True)])
    traces.write_parquet(out / "traces.parquet", compression="zstd", statistics=True)
    del traces
    images = scale("images").with_columns(
        (pl.col("image_id") + "-" + pl.col("study_id")).alias("image_id"))
    images.write_parquet(out / "images.parquet", compression="zstd", statistics=True)
    scale("knowledge").write_parquet(out / "knowledge.parquet", compression="zstd", statistics=True)
    val = scale("validation")
    draw = rng.random(n)
    fails = pl.DataFrame({"study_id": pick["study_id"], "_d": draw})
    rules = [("leakage", "leaked_source", "error", 0.00, 0.02,
              'the think text refers to the report or labels it was written from: "the report states"'),
             ("clinical", "label_not_perceived", "error", 0.02, 0.03,
              "Pleural Effusion is labelled positive but no final item perceives it"),
             ("diversity", "near_duplicate", "warning", 0.03, 0.09,
              "the think text is near-identical to 312 other traces")]
    for check, code, sev, lo, hi, msg in rules:
        hit = (pl.col("_d") >= lo) & (pl.col("_d") < hi) & (pl.col("check") == check)
        val = val.join(fails, on="study_id", how="left").with_columns(
            pl.when(hit).then(pl.lit(code)).otherwise(pl.col("code")).alias("code"),
            pl.when(hit).then(pl.lit(False)).otherwise(pl.col("passed")).alias("passed"),
            pl.when(hit).then(pl.lit(sev)).otherwise(pl.col("severity")).alias("severity"),
            pl.when(hit).then(pl.lit(msg)).otherwise(pl.col("message")).alias("message"),
        ).drop("_d")
    val.write_parquet(out / "validation.parquet", compression="zstd", statistics=True)


def prepare(run: Path, studies: int) -> None:
    """The full-scale run with validation.parquet, made where missing (as benchmarks/validate.py makes it)."""
    from synth import make_tree
    from validate import _step
    from validate import prepare as prepare_traces

    datakit = str(Path(sys.executable).with_name("datakit"))
    env = {**os.environ, "COLUMNS": "120"}
    tree = WORK / ("mimic-full" if studies == 227_835 else f"mimic-{studies}")
    if not (tree / "mimic-cxr-2.0.0-split.csv.gz").exists():
        print(f"making the synthetic tree in {tree} (once) ...", flush=True)
        tree.mkdir(parents=True, exist_ok=True)
        make_tree(tree, studies, min(377_110, 2 * studies), min(64_588, studies))
    prepare_traces(tree, run, datakit, env)
    if not (run / "validation.parquet").is_file():
        print("datakit validate ... ", end="", flush=True)
        try:
            m = _step(datakit, ["validate", "--run", str(run), "--json"], env)
            print(f"{m['wall_s']:.1f} s")
        except SystemExit:  # exit code 4 (a gate) still wrote the table
            if not (run / "validation.parquet").is_file():
                raise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="an existing run (default: the full-scale synthetic one)")
    ap.add_argument("--studies", type=int, default=227_835)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipeline", action="store_true", help="make the run with the real pipeline (slow)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    if args.run is not None:
        run = args.run
    elif args.pipeline:
        run = WORK / ("run-validate" if args.studies == 227_835 else f"run-validate-{args.studies}")
        prepare(run, args.studies)
    else:
        run = WORK / f"run-review-{args.studies}"
        if not (run / "validation.parquet").is_file():
            print(f"making {run} from the demo run (once) ... ", end="", flush=True)
            t = time.perf_counter()
            scaled_run(run, args.studies)
            print(f"{time.perf_counter() - t:.1f} s")
    results = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", str(run)], capture_output=True, text=True,
                              env={**os.environ, "DATAKIT_HOME": str(WORK / "home-none")})
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            print(proc.stdout, proc.stderr)
            raise SystemExit(f"the review child failed with exit code {proc.returncode}")
        r = json.loads(line[len("RESULT "):])
        r["process_s"] = time.perf_counter() - started
        results.append(r)

    def spread(key: str, fmt: str) -> str:
        values = sorted(r[key] for r in results)
        return " / ".join(format(v, fmt) for v in (values[0], statistics.median(values), values[-1]))

    last = results[-1]
    rows = [
        ("traces", f"{last['traces']:,}"),
        ("open: process start → first detail on screen, s", spread("open_s", ".2f")),
        ("  CPU time of the process by then, s", spread("open_cpu_s", ".2f")),
        ("  imports, s (CPU s)", f"{spread('import_s', '.2f')} ({spread('import_cpu_s', '.2f')})"),
        ("  index: ids, split, labels, failed checks, s (CPU s)",
         f"{spread('index_s', '.2f')} ({spread('index_cpu_s', '.2f')})"),
        ("move one study (detail read and drawn), ms", spread("move_ms", ".0f")),
        ("page down, ms", spread("page_ms", ".0f")),
        ("last study, ms", spread("last_ms", ".0f")),
        ("resident memory after the filters, MB", spread("rss_mb", ".0f")),
        ("cores", str(os.cpu_count())),
    ]
    rows += [(f"filter {q!r} (last run), ms → rows", f"{ms:.0f} → {n:,}") for q, (ms, n) in last["filters"].items()]
    width = max(len(k) for k, _ in rows)
    title = f"datakit review on {run} (min / median / max of {args.repeat}; target: open under 2 s)"
    print(title + "\n" + "-" * len(title))
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))


if __name__ == "__main__":
    main()
