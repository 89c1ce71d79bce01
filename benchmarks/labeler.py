"""Speed of the labeler on full-scale MIMIC-shaped text.

    python benchmarks/labeler.py                      # 227,835 synthetic reports, all available cores
    python benchmarks/labeler.py --n 20000 --workers 1
    python benchmarks/labeler.py --compare-regex      # also time three ways of finding mention phrases

Texts come from ``benchmarks/synth.py`` (``make_report``: MIMIC's layout, ``___`` placeholders, sentences
written for datakit; no real data). Each report is labelled twice: the text the CheXpert convention reads
(the official extraction, ``datakit.ingest.sections.extract``, done before timing, as ingest does it) and the
whole report. Prints reports/s, wall time and peak RSS (this process, and the workers polled while they run),
and — as a sanity check — agreement with the labels the generator wrote for the findings it chose (the
generator labels only the label a sentence was drawn for, and calls "the lungs are clear" a negative Lung
Opacity, which CheXpert-style labelers leave unlabelled: the figure is not an accuracy).
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import table  # noqa: E402
from synth import LABEL_NAMES, make_report  # noqa: E402

from datakit.ingest.sections import extract  # noqa: E402
from datakit.parallel import cores as _cores  # noqa: E402
from datakit.reading.labeler import Labeler  # noqa: E402
from datakit.reading.lexicon import key, trie_regex  # noqa: E402
from datakit.tables import LABEL_BY_NAME, LABEL_COLUMNS  # noqa: E402

FULL_SCALE = 227_835


class WorkerPeak:
    """Polls the RSS of this process's children (the label_many workers) while a block runs.

    ``getrusage(RUSAGE_CHILDREN)`` would not do: a spawned worker starts as a fork of this process, whose
    size it briefly shares and which the kernel keeps as the child's high-water mark.
    """

    def __init__(self) -> None:
        self.peak_one = self.peak_sum = 0
        self._done = threading.Event()

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._done.is_set():
            sizes = []
            for child in me.children(recursive=True):
                try:
                    sizes.append(child.memory_info().rss)
                except psutil.Error:
                    pass
            if sizes:
                self.peak_one = max(self.peak_one, max(sizes))
                self.peak_sum = max(self.peak_sum, sum(sizes))
            time.sleep(0.05)

    def __enter__(self) -> WorkerPeak:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def timed(labeler: Labeler, texts: list[str], workers: int):
    start = time.perf_counter()
    frame = labeler.label_many(texts, workers=workers)
    return time.perf_counter() - start, frame


def agreement(frame, labels: list[dict[str, str]]) -> tuple[float, float]:
    """Share of (report, label) cells equal to the generator's labels, and of reports equal in all 14."""
    codes = {"1.0": 1, "0.0": 0, "-1.0": -1, "": None}
    got = frame.rows()
    cells = same_rows = 0
    order = [LABEL_BY_NAME[n] for n in LABEL_NAMES]
    idx = [LABEL_COLUMNS.index(c) for c in order]
    for row, want in zip(got, labels, strict=True):
        ok = [row[i] == codes[want[name]] for i, name in zip(idx, LABEL_NAMES, strict=True)]
        cells += sum(ok)
        same_rows += all(ok)
    return cells / (len(got) * len(LABEL_NAMES)), same_rows / len(got)


def compare_regex(labeler: Labeler, texts: list[str]) -> list[tuple[str, str]]:
    """Time three ways to find the mention phrases in ``texts``: trie, one alternation, one per label."""
    phrases = sorted(labeler.tables.phrases, key=lambda p: (-len(p), p))

    def alternation(keys: list[str]) -> re.Pattern:
        body = "|".join(re.escape(k).replace(r"\ ", r"[\s\-]+") for k in keys)
        return re.compile(rf"(?<!\w)(?:{body})(?!\w)")

    per_label = {}
    for k, p in labeler.tables.phrases.items():
        for label in p.labels:
            per_label.setdefault(label, []).append(k)
    candidates = {
        "character trie (used)": [trie_regex(sorted(phrases))],
        "one plain alternation": [alternation(phrases)],
        "one alternation per label (13)": [
            alternation(sorted(v, key=lambda p: (-len(p), p))) for v in per_label.values()
        ],
    }
    rows = []
    counts = {}
    for name, regexes in candidates.items():
        start = time.perf_counter()
        n = 0
        for text in texts:
            low = text.lower()
            for rx in regexes:
                for m in rx.finditer(low):
                    key(m.group())
                    n += 1
        wall = time.perf_counter() - start
        counts[name] = n
        rows.append((name, f"{len(texts) / wall:,.0f} texts/s ({wall:.2f} s, {n:,} matches)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=FULL_SCALE, help="reports (default: MIMIC-CXR's 227,835)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all available cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare-regex", action="store_true", help="also time mention-finding strategies")
    args = parser.parse_args()
    workers = args.workers or _cores()

    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    reports, truth = zip(*(make_report(rng) for _ in range(args.n)), strict=True)
    sections = [extract(r) for r in reports]
    extracted = [s.text for s in sections]
    findings = [s.findings or s.last_paragraph or "" for s in sections]
    prep = time.perf_counter() - t0

    t0 = time.perf_counter()
    labeler = Labeler()
    build = time.perf_counter() - t0
    rows = [
        ("reports", f"{args.n:,} (generated and sectioned in {prep:.1f} s, not counted)"),
        (
            "average length",
            f"extracted {sum(map(len, extracted)) / args.n:.0f} chars, "
            f"whole report {sum(map(len, reports)) / args.n:.0f} chars",
        ),
        ("labeler build", f"{build:.2f} s"),
        ("workers", f"{workers} (cores available: {_cores()})"),
    ]
    workers_peak = WorkerPeak()
    with workers_peak:
        for name, texts in (("extracted text", extracted), ("whole report", list(reports))):
            wall, frame = timed(labeler, texts, workers)
            rows.append((name, f"{args.n / wall:,.0f} reports/s, wall {wall:.1f} s"))
    sample = extracted[: min(20_000, args.n)]
    wall, _ = timed(labeler, sample, 1)
    rows.append(("one process, extracted", f"{len(sample) / wall:,.0f} reports/s"))
    sample = list(reports[: min(20_000, args.n)])
    wall, _ = timed(labeler, sample, 1)
    rows.append(("one process, whole report", f"{len(sample) / wall:,.0f} reports/s"))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    rows.append(
        (
            "peak RSS",
            f"main process {own:,.0f} MiB (holds the texts and the generator's labels); "
            f"workers {workers_peak.peak_one / 2**20:,.0f} MiB each at most, "
            f"{workers_peak.peak_sum / 2**20:,.0f} MiB together",
        )
    )
    _, frame = timed(labeler, findings, workers)
    cell, whole = agreement(frame, list(truth))
    rows.append(
        (
            "agreement with generator",
            f"{cell:.1%} of label cells, {whole:.1%} of reports exact (findings text; sanity check only)",
        )
    )
    print(table("labeler speed (benchmarks/labeler.py)", rows))
    if args.compare_regex:
        print()
        print(
            table(
                "finding mention phrases, one process, 20,000 whole reports",
                compare_regex(labeler, list(reports[:20_000])),
            )
        )


if __name__ == "__main__":
    main()
