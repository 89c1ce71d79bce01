"""Check 3, knowledge: every id a trace uses exists, and every citation is grounded in this study.

A reasoning step cites knowledge in its ``knowledge`` list and inline as ``[K:<id>]``. A cited entry is
*grounded* when retrieval found it for the study (knowledge.parquet), or it belongs to a finding the trace
perceives (any item of the draft or the final perception, a corrected finding, or the label-level entry those
count towards), or it is ``no_finding`` and the trace perceives nothing that would make the study abnormal.
"""

from __future__ import annotations

import polars as pl

from datakit.semantics import ABNORMAL
from datakit.validate.context import Context
from datakit.validate.registry import check, concat_problems, problems

INLINE = r"\[K: *([^\]]*?) *\]"


def _inline(ctx: Context) -> pl.DataFrame:
    """study_id, step, id: the ``[K:...]`` citations in each step's observation and inference."""
    text = pl.concat_str([pl.col("observation"), pl.col("inference")], separator=" ")
    s = ctx.steps.select("study_id", "step", text.str.extract_all(INLINE).alias("id"))
    s = s.explode("id").drop_nulls("id")
    return s.with_columns(pl.col("id").str.extract(INLINE, 1))


def _listed(ctx: Context) -> pl.DataFrame:
    """study_id, step, id: the ids in each step's ``knowledge`` list."""
    return ctx.steps.select("study_id", "step", pl.col("knowledge").alias("id")).explode("id").drop_nulls("id")


def _used_ids(ctx: Context, inline: pl.DataFrame, listed: pl.DataFrame) -> pl.DataFrame:
    """study_id, id, where: every knowledge id a trace uses."""
    parts = [
        listed.select("study_id", "id", pl.format("reasoning step {}", pl.col("step") + 1).alias("where")),
        inline.select("study_id", "id", pl.format("[K:] in step {}", pl.col("step") + 1).alias("where")),
        ctx.steps.filter(pl.col("conclusion") != "normal").select(
            "study_id",
            pl.col("conclusion").alias("id"),
            pl.format("conclusion of step {}", pl.col("step") + 1).alias("where"),
        ),
        ctx.draft.filter(pl.col("finding") != "normal").select(
            "study_id",
            pl.col("finding").alias("id"),
            pl.format("perception item {}", pl.col("item") + 1).alias("where"),
        ),
        ctx.corrections.select(
            "study_id",
            pl.col("finding").alias("id"),
            pl.format("correction {}", pl.col("corr") + 1).alias("where"),
        ),
    ]
    return pl.concat(parts)


def _grounded(ctx: Context) -> pl.DataFrame:
    """study_id, id: the entries a citation may use."""
    perceived = (
        pl.concat(
            [
                ctx.draft.select("study_id", pl.col("finding").alias("id")),
                ctx.final.select("study_id", pl.col("finding").alias("id")),
                ctx.corrections.select("study_id", pl.col("finding").alias("id")),
            ]
        )
        .filter(pl.col("id") != "normal")
        .unique()
    )
    parents = (
        perceived.join(ctx.entries.select("entry_id", "chexpert"), left_on="id", right_on="entry_id")
        .select("study_id", pl.col("chexpert").alias("id"))
        .drop_nulls("id")
    )
    retrieved = ctx.hits.select("study_id", pl.col("entry_id").alias("id"))
    # no_finding is grounded where nothing perceived (draft or final) makes the study abnormal
    abnormal = pl.concat(
        [ctx.draft.select("study_id", "finding", "status"), ctx.final.select("study_id", "finding", "status")]
    )
    abnormal = (
        abnormal.filter(pl.col("status").is_in(ABNORMAL))
        .join(ctx.entries.select("entry_id", "chexpert"), left_on="finding", right_on="entry_id")
        .filter(
            pl.col("chexpert").is_not_null() & ~pl.col("chexpert").is_in(["support_devices", "no_finding"])
        )
    )
    normal = (
        ctx.valid_ids.to_frame()
        .join(abnormal, on="study_id", how="anti")
        .with_columns(pl.lit("no_finding").alias("id"))
    )
    return pl.concat([perceived, parents, retrieved, normal.select("study_id", "id")]).unique()


@check(
    "knowledge",
    codes={
        "unknown_knowledge_id": "error",
        "ungrounded_citation": "error",
        "unlisted_citation": "warning",
        "uncited_step": "warning",
    },
)
def knowledge(ctx: Context) -> pl.DataFrame:
    """Every cited id exists and was retrieved for the study or belongs to a finding the trace perceives."""
    known = ctx.entries.select(pl.col("entry_id").alias("id"))
    inline, listed = _inline(ctx), _listed(ctx)
    used = _used_ids(ctx, inline, listed)
    unknown = used.join(known, on="id", how="anti")
    unknown = unknown.group_by("study_id", "id", maintain_order=True).agg(
        pl.col("where").unique(maintain_order=True).str.join(", ")
    )
    hints = {i: ", ".join(ctx.kb.close_ids(i, 3)) for i in unknown["id"].unique().to_list()}
    unknown = unknown.with_columns(pl.col("id").replace_strict(hints, default="").alias("close"))
    unknown_msg = pl.format("{} ({}) is not a knowledge entry", pl.col("id"), pl.col("where")) + pl.when(
        pl.col("close") != ""
    ).then(pl.format("; did you mean {}?", pl.col("close"))).otherwise(pl.lit(""))

    cited = pl.concat([listed, inline.select("study_id", "step", "id")]).unique()
    cited = cited.join(known, on="id", how="semi")
    loose = cited.join(_grounded(ctx), on=["study_id", "id"], how="anti").sort("study_id", "step")
    loose = loose.group_by("study_id", "id", maintain_order=True).agg(pl.col("step").min())
    loose_msg = pl.format(
        "step {} cites {}, which was neither retrieved for this study nor belongs to a perceived finding",
        pl.col("step") + 1,
        pl.col("id"),
    )

    unlisted = inline.join(listed, on=["study_id", "step", "id"], how="anti").unique(maintain_order=True)
    unlisted_msg = pl.format(
        "step {} cites [K:{}] in its text but not in its knowledge list", pl.col("step") + 1, pl.col("id")
    )
    all_cites = pl.concat([listed.select("study_id", "step"), inline.select("study_id", "step")]).unique()
    uncited = ctx.steps.select("study_id", "step", "conclusion").join(
        all_cites, on=["study_id", "step"], how="anti"
    )
    uncited_msg = pl.format(
        "step {} (concluding {}) cites no knowledge", pl.col("step") + 1, pl.col("conclusion")
    )
    return concat_problems(
        [
            problems(unknown, "unknown_knowledge_id", unknown_msg),
            problems(loose, "ungrounded_citation", loose_msg),
            problems(unlisted, "unlisted_citation", unlisted_msg),
            problems(uncited, "uncited_step", uncited_msg),
        ]
    )
