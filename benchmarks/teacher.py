"""The teacher stage as a user runs it: `datakit annotate` with the LLM teacher, and the offline teacher at scale.

    python benchmarks/teacher.py [--studies 2000] [--concurrency 64] [--latency 0.5] [--multi-stage] [--offline-full]

1. Makes (once) a 2,000-study MIMIC-shaped run with small real images: ingest (with conversion) + retrieve.
2. Starts an OpenAI-compatible server in its own process that answers every request after 0.5 s with a valid
   trace, and times the whole command `datakit annotate --teacher llm --concurrency 64` from a fresh cache:
   ideal = studies × requests per study × latency / concurrency (15.6 s for 2,000 single-call traces; the
   three-stage prompts send three requests per trace, so their ideal is three times that). Target ≥ 90 %.
3. Times the same command again, all cached: it must send no request at all and finish under 2.5 s.
4. With --offline-full: the offline teacher on the full-scale synthetic run (227,835 studies; target < 2 min).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import measure, table  # noqa: E402
from synth import make_tree  # noqa: E402

WORK = HERE / "_work"
REGIONS = ("airway", "lungs", "pleura", "heart_mediastinum", "hila", "bones_soft_tissue", "upper_abdomen",
           "lines_devices")


def _trace_parts() -> dict:
    perception = [{"region": r, "finding": "normal", "status": "present", "laterality": "none", "severity": None,
                   "evidence": f"The {r.replace('_', ' ')} look normal on both views."} for r in REGIONS]
    reasoning = [{"observation": "Every region looks normal", "inference": "No acute abnormality [K:no_finding].",
                  "knowledge": ["no_finding"], "conclusion": "no_finding", "status": "present"}]
    reflection = {"checked": ["the costophrenic angles", "the lung apices"], "corrections": [],
                  "summary": "The first look holds."}
    report = {"findings": "The lungs are clear.", "impression": "No acute process."}
    return {"perception": perception, "reasoning": reasoning, "reflection": reflection, "report": report}


def _answers() -> dict[str, str]:
    p = _trace_parts()
    return {
        '"trace_v1_perception"': json.dumps({"perception": p["perception"]}),
        '"trace_v1_reasoning"': json.dumps({"reasoning": p["reasoning"]}),
        '"trace_v1_reflection_report"': json.dumps({"reflection": p["reflection"], "report": p["report"]}),
        "": json.dumps(p),
    }


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (320, 256), 90).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _bench_run(n: int, datakit: str) -> Path:
    base = WORK / f"teacher-run-{n}"
    if (base / "knowledge.parquet").exists():
        return base
    tree = WORK / f"teacher-tree-{n}"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    make_tree(tree, n, int(n * 1.655), max(1, n // 3), image_payload=_tiny_jpeg())
    shutil.rmtree(base, ignore_errors=True)
    subprocess.run([datakit, "ingest", str(tree), "--run", str(base), "--image-size", "256"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([datakit, "retrieve", "--run", str(base)], check=True, stdout=subprocess.DEVNULL)
    return base


def _server_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


def _requests_seen(port: int) -> int:
    return _server_stats(port)["chat_requests"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--multi-stage", action="store_true", help="also time the three-stage prompts")
    ap.add_argument("--offline-full", action="store_true", help="also time the offline teacher on 227,835 studies")
    args = ap.parse_args()
    datakit = str(Path(sys.executable).with_name("datakit"))
    base = _bench_run(args.studies, datakit)

    answers = WORK / "teacher-answers.json"
    answers.write_text(json.dumps(_answers()))
    server = subprocess.Popen([sys.executable, str(HERE / "teacher_transport.py"), "--serve", "--latency",
                               str(args.latency), "--content-file", str(answers)], stdout=subprocess.PIPE, text=True)
    rows: list[tuple[str, str]] = []
    try:
        port = int(server.stdout.readline())
        modes = [("single call", "--single-call", 1)]
        if args.multi_stage:
            modes.append(("three stages", "--multi-stage", 3))
        for label, flag, per_study in modes:
            run = WORK / "teacher-bench-run"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(base, run)
            cmd = [datakit, "annotate", "--run", str(run), "--teacher", "llm", "--model", "bench-model",
                   "--base-url", f"http://127.0.0.1:{port}/v1", "--concurrency", str(args.concurrency),
                   "--no-progress", flag]
            env = {**os.environ, "OPENAI_API_KEY": "bench"}
            ideal = args.studies * per_study * args.latency / args.concurrency
            for attempt in ("fresh cache", "all cached"):
                before = _requests_seen(port)
                started = time.time()
                m = measure(cmd, env=env)
                ended = time.time()
                stats = _server_stats(port)
                if m["rc"] != 0:
                    print(m["output"])
                    raise SystemExit(f"annotate failed ({m['rc']})")
                sent = _requests_seen(port) - before
                if attempt == "fresh cache":
                    verdict = (f"ideal {ideal:.1f} s → {ideal / m['wall_s']:.0%} of ideal (target ≥ 90%); "
                               f"first request after {stats['first'] - started:.2f} s, "
                               f"{ended - stats['last']:.2f} s after the last answer")
                else:
                    verdict = f"target < 2.5 s, 0 requests ({'ok' if sent == 0 and m['wall_s'] < 2.5 else 'MISSED'})"
                rows.append((f"{label}, {attempt}",
                             f"{m['wall_s']:6.2f} s wall, {m['cpu_s']:5.2f} s CPU, {sent:5d} requests sent; {verdict}"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(table(f"datakit annotate --teacher llm: {args.studies} studies, concurrency {args.concurrency}, "
                f"server latency {args.latency} s, {os.cpu_count()} cores", rows))

    if args.offline_full:
        full = WORK / "run-ingest"
        if not (full / "studies.parquet").exists():
            raise SystemExit("run benchmarks/ingest.py first "
                             "(it leaves the full-scale run in benchmarks/_work/run-ingest)")
        if not (full / "knowledge.parquet").exists():
            subprocess.run([datakit, "retrieve", "--run", str(full)], check=True, stdout=subprocess.DEVNULL)
        m = measure([datakit, "annotate", "--run", str(full), "--no-progress"])
        print()
        print(table("Offline teacher at full scale (227,835 studies)", [
            ("wall", f"{m['wall_s']:.1f} s (target < 120 s)"),
            ("CPU", f"{m['cpu_s']:.1f} s"),
            ("peak memory (PSS), process tree", f"{m['peak_rss_mb']:.0f} MB"),
        ]))


if __name__ == "__main__":
    main()
