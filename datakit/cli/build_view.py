"""Rich renderings of ``datakit build`` and ``datakit status``: stage lines while it runs, the summary after."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from datakit.cli.console import err_console
from datakit.pipeline import StageReport
from datakit.pipeline.status import STAGES, RunStatus
from datakit.progress import before_bar

VERB = {"ingest": "reading the source", "retrieve": "retrieving knowledge", "annotate": "writing traces",
        "validate": "checking traces", "export": "writing training files"}


class StageLines:
    """Prints a line when a stage starts (with how long it took last time) and one when it ends."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._status: Any = None
        self._unhook: Any = None  # unregisters close() from datakit.progress
        self._n = 0

    def start(self, stage: str, forced: bool) -> None:
        """Say which stage starts, and how long it took the last time."""
        self._n += 1
        last = (self.run.manifest().get("stages", {}).get(stage) or {}).get("seconds") if self.run.root.is_dir() \
            else None
        eta = f" (last time {last:.0f} s)" if isinstance(last, (int, float)) and last >= 1 else ""
        err_console.print(Text.assemble((f"[{self._n}/{len(STAGES)}] {stage}", "bold"),
                                        f": {VERB[stage]}{' (forced)' if forced else ''}{eta} …"))
        # a spinner until the stage draws its own bar (datakit.progress): rich shows one live display at a time
        self._status = err_console.status(Text(f"{stage} …"), spinner="dots")
        self._status.start()
        self._unhook = before_bar(self.close)
        self._t0 = time.perf_counter()

    def close(self) -> None:
        """Stop the spinner (also when a stage failed or was interrupted: the cursor comes back)."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        unhook, self._unhook = self._unhook, None
        if unhook is not None:
            unhook()

    def done(self, report: StageReport) -> None:
        """Say whether the stage ran (and how long it took) or was skipped."""
        self.close()
        if report.status == "skipped":
            err_console.print(Text(f"      {report.name}: unchanged since it last finished, skipped", style="dim"))
        else:
            err_console.print(Text(f"      {report.name}: done in {report.seconds:.1f} s", style="green"))


def _reasons(reasons: dict[str, int], n: int = 4) -> str:
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:n]
    more = len(reasons) - len(top)
    return ", ".join(f"{code} {count:,}" for code, count in top) + (f", {more} more" if more > 0 else "")


def summary_view(status: RunStatus, *, requests: dict[str, int] | None = None, seconds: float | None = None,
                 title: str = "Build") -> Group:
    """Studies in, traces accepted and rejected by reason, exported rows, teacher use, where, and what next."""
    t = Table(title=Text(f"{title}: {status.run.root}"), title_justify="left", show_header=False)
    t.add_column("", style="bold")
    t.add_column("", overflow="fold")
    for stage in STAGES:
        entry = status.finished.get(stage)
        t.add_row(stage, Text("finished " + entry.get("finished_utc", "")[:19].replace("T", " ") + " UTC")
                  if entry else Text("not run yet", style="yellow"))
    s = status.studies
    if s:
        t.add_row("studies", Text(f"{s['in']:,} in = {s['kept']:,} kept + {s['quarantined']:,} set aside"
                                  + (f" ({_reasons(status.ingest_reasons)})" if status.ingest_reasons else "")))
    i = status.images
    if i:
        t.add_row("images", Text(f"{i['in']:,} in = {i['kept']:,} kept + {i['quarantined']:,} set aside"
                                 + (f" ({_reasons(status.image_reasons)})" if status.image_reasons else "")))
    tr = status.traces
    if tr:
        t.add_row("traces", Text(f"{tr['out']:,} written, {tr['quarantined']:,} the teacher could not write"
                                 + (f" ({_reasons(status.teacher_reasons)})" if status.teacher_reasons else "")))
    v = status.validation
    if v:
        rate = f"{v['pass_rate']:.1%}" if v.get("pass_rate") is not None else "—"
        gate = f", gate {v['gate']:.1%}" if v.get("gate") is not None else ""
        t.add_row("validation", Text(f"{v['accepted']:,} accepted, {v['rejected']:,} rejected, {v['flagged']:,} "
                                     f"flagged; pass rate {rate}{gate}"))
        if status.rejected_reasons:
            t.add_row("rejected by", Text(_reasons(status.rejected_reasons, 6)))
    for fmt, splits in status.exported.items():
        t.add_row(f"export {fmt}", Text(", ".join(f"{split} {n:,}" for split, n in sorted(splits.items()))))
    te = status.teacher
    if te:
        line = f"{te.get('kind') or '—'}"
        if requests is not None and (requests.get("made") or requests.get("cached") or requests.get("failed")):
            line += (f"; requests: {requests['made']:,} made, {requests['cached']:,} from the cache, "
                     f"{requests['failed']:,} failed")
        elif te.get("cached_answers") or te.get("failed_calls"):
            line += (f"; cache: {te.get('cached_answers', 0):,} answers stored, "
                     f"{te.get('failed_calls', 0):,} failed calls")
        if te.get("input_tokens") or te.get("output_tokens"):
            line += (f"; tokens {te['input_tokens']:,} in / {te['output_tokens']:,} out; "
                     f"cost ${te.get('cost_usd') or 0:,.4f}")
        t.add_row("teacher", Text(line))
    if status.export_dir is not None:
        t.add_row("output", Text(f"{status.export_dir}/<format>/ (card: {status.export_dir / 'README.md'})"))
    if seconds is not None:
        t.caption = Text(f"{seconds:.1f} s")
    parts: list[Any] = [t, Text("Next:", style="bold")]
    parts += [Text(f"  {c}") for c in status.next_commands]
    return Group(*parts)
