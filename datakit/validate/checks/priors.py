"""Check: priors — final reports that compare with an earlier study (issue 15).

``report_refers_to_prior`` (warning): the final report has sentences that compare with a prior study
(:func:`datakit.reading.priors.prior_sentences`): "unchanged", "again seen", "has resolved", "compared with
the prior". A model trained on one study's images cannot see the prior, so it learns to invent comparisons;
the export option ``prior_sentences = "remove"`` rewrites or drops them (:func:`~datakit.reading.priors.strip_priors`).
The summary counts the traces and sentences (``prior_references``).
"""

from __future__ import annotations

import polars as pl

from datakit.reading.priors import KEYS_PATTERN, prior_sentences
from datakit.validate.context import Context
from datakit.validate.registry import PROBLEM_SCHEMA, check, no_problems


@check("priors", codes={"report_refers_to_prior": "warning"})
def priors(ctx: Context) -> pl.DataFrame:
    """The final report does not compare with an earlier study the model cannot see."""
    rep = pl.col("report")
    reports = ctx.decoded.select(
        "study_id",
        pl.concat_str(
            [rep.struct.field("findings").fill_null(""), rep.struct.field("impression").fill_null("")], separator="\n\n"
        ).alias("text"),
    )
    # most reports hold none of the comparison words: polars' regex engine sets them aside before Python looks
    candidates = reports.filter(pl.col("text").str.to_lowercase().str.contains(KEYS_PATTERN))
    memo: dict[str, list[str]] = {}
    rows = []
    n_sentences = 0
    for sid, text in candidates.iter_rows():
        found = memo.get(text)
        if found is None:
            found = memo[text] = prior_sentences(text)
        if found:
            n_sentences += len(found)
            quoted = "; ".join(f'"{s[:100]}"' for s in found[:2])
            rows.append(
                (sid, "report_refers_to_prior", f"{len(found)} sentence(s) compare with a prior study: {quoted}")
            )
    ctx.summary_extra["prior_references"] = {"traces": len(rows), "sentences": n_sentences}
    return pl.DataFrame(rows, schema=PROBLEM_SCHEMA, orient="row") if rows else no_problems()
