"""Check: judge — an LLM reads each trace against its report (optional; ``validate.llm_judge.enabled``).

Codes: ``judge_contradicted`` and ``judge_unsupported`` (errors): a statement the judge found the report
contradicts or does not support, quoted with the judge's reason; ``judge_failed`` (warning): the judge gave no
usable answer (HTTP failure, or an answer that was not its JSON after the re-asks) — the trace is not judged,
and the message says why. See :mod:`datakit.validate.judge`.
"""

from __future__ import annotations

import polars as pl

from datakit.validate.context import Context
from datakit.validate.registry import PROBLEM_SCHEMA, check, no_problems

CODES = {"judge_contradicted": "error", "judge_unsupported": "error", "judge_failed": "warning"}


@check("judge", codes=CODES)
def judge(ctx: Context) -> pl.DataFrame:
    """An LLM judge finds no statement of the trace that the report contradicts or does not support."""
    from datakit.validate.judge import Judge

    cfg = ctx.config.llm_judge
    items = [
        (sid, think or "", report or "")
        for sid, think, report in ctx.texts.select("study_id", "think", "report").iter_rows()
    ]
    if not items:
        return no_problems()
    results = Judge(cfg).ask(items, run=ctx.run)
    rows = []
    sent = sum(1 for r in results if not r.cached)
    ctx.summary_extra["judge"] = {"asked": len(results), "sent": sent, "cached": len(results) - sent}
    for res in results:
        if not res.ok:
            rows.append(
                (
                    res.study_id,
                    "judge_failed",
                    f"the judge gave no usable answer ({res.error_code}): {(res.error or '')[:300]}",
                )
            )
            continue
        for p in res.parsed[: cfg.max_findings]:
            reason = f" ({p['reason'][:200]})" if p["reason"] else ""
            rows.append((res.study_id, f"judge_{p['kind']}", f'"{p["statement"][:200]}"{reason}'))
    return pl.DataFrame(rows, schema=PROBLEM_SCHEMA, orient="row") if rows else no_problems()
