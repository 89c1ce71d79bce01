"""Check 3, evidence: each perception item's own words, and the final report, against its structured fields.

The text is read by the knowledge base's finding reader (:mod:`datakit.validate.checks.mentions`). A mention
*names an item's finding* when it is the same entry, or the label's own entry of it ("fracture" for
``rib_fracture``, and the reverse).

- ``evidence_contradicts_item``: an item present or uncertain in every state it had (draft, and final after
  the corrections) whose evidence reads its finding only as absent; or absent throughout, with evidence that
  reads it only as present.
- ``evidence_side_mismatch``: the evidence gives the finding a side that neither the item's draft side nor its
  final side agrees with (a bilateral mention allows either side; left and right allow bilateral).
- ``evidence_mentions_unsupported_finding``: a draft item's evidence (normal items' too) names another
  finding as present that no present or uncertain item of the final perception has.
- ``side_contradicts_report``: a present or uncertain finding of the final perception on a side the report
  does not give it, or on one side where the report gives it on both.
- ``grade_contradicts_report``: its severity is a step of the grade scale that no mention of it in the report,
  on that side, has ("mild to moderate" allows both).

A corrected item is judged against both its states: its evidence was written for the draft, and a correction
that fixes the draft's side or status is what the reflection is for. Sides the reader leaves unattached
("small right and moderate left effusions") count as given, so the reader's gaps never reject a trace.
"""

from __future__ import annotations

import polars as pl

from datakit.reading.words import SEVERITY_WORDS
from datakit.semantics import ABNORMAL
from datakit.validate.checks.mentions import (
    SIDES,
    grade_level,
    kin,
    read,
    sides_given,
    supported,
    with_kin,
)
from datakit.validate.context import Context, ascii_boundaries
from datakit.validate.registry import check, concat_problems, problems

# A consolidation, an oedema, an atelectasis, a pneumonia or a lung lesion is an opacity of the lung, and an
# enlarged heart enlarges the cardiomediastinal silhouette: an item of the narrower finding supports a
# mention of the broader one ("dense opacity with air bronchograms" as the evidence of a consolidation).
BROADER = {
    "lung_opacity": ("consolidation", "pneumonia", "edema", "atelectasis", "lung_lesion"),
    "enlarged_cardiomediastinum": ("cardiomegaly",),
}
SIDE_OR_GRADE = ascii_boundaries(
    r"(?i)\b(?:left|right|bilateral|bilaterally|both|bibasilar|bibasal|bibasalar)\b|" + SEVERITY_WORDS.pattern
)
_short = pl.col("evidence").str.slice(0, 100)


def _abnormal(col: str) -> pl.Expr:
    return pl.col(col).is_in(ABNORMAL)


PAIR = ["evidence", "finding"]


def _items(ctx: Context, pairs: pl.DataFrame) -> pl.DataFrame:
    """The items whose (evidence, finding) is one of ``pairs``, with the states they had.

    Columns: study_id, item, region, finding, evidence, the draft's status, laterality and severity, and the
    final's (f_*). Items added by a correction have their ``after`` state as both, the correction's note as
    evidence and a negative ``item``; draft items the final drops have no final state.
    """
    final = ctx.final.rename({"status": "f_status", "laterality": "f_laterality", "severity": "f_severity"})
    kept = ctx.draft.join(pairs, on=PAIR, how="semi").join(
        final.filter(pl.col("item").is_not_null()).select(
            "study_id", "item", "f_status", "f_laterality", "f_severity"
        ),
        on=["study_id", "item"],
        how="left",
    )
    added = (
        final.filter(pl.col("source") == "added")
        .with_columns(
            (-pl.int_range(1, pl.len() + 1)).cast(pl.Int32).alias("item"),
            pl.col("f_status").alias("status"),
            pl.col("f_laterality").alias("laterality"),
            pl.col("f_severity").alias("severity"),
        )
        .join(pairs, on=PAIR, how="semi")
    )
    return pl.concat([kept, added.select(kept.columns)], how="vertical_relaxed")


def _evidence_problems(ctx: Context) -> list[pl.DataFrame]:
    # the reading depends on the evidence and the item's finding only: judge each distinct pair once
    added = ctx.final.filter(pl.col("source") == "added")
    pairs = pl.concat([ctx.draft.select(PAIR), added.select(PAIR)]).unique()
    said = with_kin(pairs.join(read(ctx, pairs["evidence"]), left_on="evidence", right_on="text"), kin(ctx))
    own = said.filter(pl.col("same") & (pl.col("finding") != "normal"))

    # 1. the status the evidence gives
    read_as = (
        own.group_by(PAIR)
        .agg(
            _abnormal("m_status").any().alias("any_abnormal"),
            (pl.col("m_status") == "absent").any().alias("any_absent"),
            (pl.col("m_status") == "present").any().alias("any_present"),
            pl.col("clause").filter(pl.col("m_status") == "absent").first().alias("absent_clause"),
            pl.col("clause").filter(pl.col("m_status") == "present").first().alias("present_clause"),
        )
        .filter(
            (pl.col("any_absent") & ~pl.col("any_abnormal")) | (pl.col("any_present") & ~pl.col("any_absent"))
        )
    )
    st = _items(ctx, read_as.select(PAIR)).join(read_as, on=PAIR)
    no_final = pl.col("f_status").is_null()
    denied = st.filter(_abnormal("status") & (no_final | _abnormal("f_status")) & ~pl.col("any_abnormal"))
    asserted = st.filter(
        (pl.col("status") == "absent") & (no_final | (pl.col("f_status") == "absent")) & ~pl.col("any_absent")
    )
    out = [
        problems(
            denied,
            "evidence_contradicts_item",
            pl.format(
                '{} {} ({}), but its evidence reads it as absent: "{}" (evidence: "{}")',
                "finding",
                pl.coalesce("f_status", "status"),
                "region",
                "absent_clause",
                _short,
            ),
        ),
        problems(
            asserted,
            "evidence_contradicts_item",
            pl.format(
                '{} absent ({}), but its evidence reads it as present: "{}" (evidence: "{}")',
                "finding",
                "region",
                "present_clause",
                _short,
            ),
        ),
    ]

    # 2. the side the evidence gives
    given = sides_given(own, PAIR)
    sides = (
        _items(ctx, given.select(PAIR))
        .join(given, on=PAIR)
        .with_columns(
            pl.when(_abnormal("status")).then(pl.col("laterality")).alias("d_side"),
            pl.when(_abnormal("f_status")).then(pl.col("f_laterality")).alias("f_side"),
        )
    )
    wrong_side = sides.filter(
        (pl.col("d_side").is_in(SIDES) | pl.col("f_side").is_in(SIDES))
        & ~supported("d_side")
        & ~supported("f_side")
    )
    out.append(
        problems(
            wrong_side,
            "evidence_side_mismatch",
            pl.format(
                "{} is {}, but its evidence names another side: {}",
                "finding",
                pl.coalesce("f_side", "d_side"),
                "named",
            ),
        )
    )

    # 3. other findings a draft item's evidence names as present (an added item's evidence is the
    # correction's note: the reflection's wording, which names the region it re-inspected)
    named = said.filter(
        ~pl.col("same") & (pl.col("m_status") == "present") & (pl.col("entry") != "no_finding")
    ).select(*PAIR, "entry", "clause")
    others = ctx.draft.select("study_id", "item", "region", *PAIR).join(named, on=PAIR)
    others = others.join(_covered(ctx, others), on=["study_id", "entry"], how="anti").unique(
        ["study_id", "item", "entry"], maintain_order=True
    )
    whose = pl.when(pl.col("finding") == "normal").then(pl.lit("normal")).otherwise(pl.col("finding"))
    out.append(
        problems(
            others,
            "evidence_mentions_unsupported_finding",
            pl.format(
                'the evidence of the {} {} item names {} as present ("{}"), but no item of the final '
                "perception has it",
                "region",
                whose,
                "entry",
                "clause",
            ),
        )
    )
    return out


def _covered(ctx: Context, named: pl.DataFrame) -> pl.DataFrame:
    """study_id, entry: the mentions of ``named`` that a present or uncertain final item accounts for.

    An item accounts for its own finding, the findings it is kin to, and a broader one (:data:`BROADER`).
    """
    e = ctx.entries.select("entry_id", "chexpert")
    broader = pl.concat(
        [
            e.filter(pl.col("chexpert") == wide).join(
                e.filter(pl.col("chexpert").is_in(list(narrow))), how="cross", suffix="_y"
            )
            for wide, narrow in BROADER.items()
        ]
    ).select(pl.col("entry_id_y").alias("finding"), pl.col("entry_id").alias("entry"))
    supports = pl.concat([kin(ctx), broader]).unique()
    seen = ctx.final.filter(_abnormal("status")).select("study_id", "finding")
    return (
        named.select("study_id", "entry")
        .unique()
        .join(supports, on="entry")
        .join(seen, on=["study_id", "finding"], how="semi")
        .select("study_id", "entry")
        .unique()
    )


def _report_problems(ctx: Context) -> list[pl.DataFrame]:
    final = ctx.final.filter(_abnormal("status")).with_row_index("key")
    sided = final.filter(pl.col("laterality").is_in(SIDES))
    steps = {w: grade_level(w) for w in final["severity"].drop_nulls().unique().to_list()}
    graded = final.with_columns(
        pl.col("severity").replace_strict(steps, default=None, return_dtype=pl.Int8).alias("level")
    ).filter(pl.col("level").is_not_null())
    wanted = pl.concat([sided.select("study_id"), graded.select("study_id")]).unique()
    sentences = ctx.report_sentences.join(wanted, on="study_id", how="semi").filter(
        pl.col("sentence").str.contains(SIDE_OR_GRADE)
    ).with_row_index("_pos")
    said = sentences.join(read(ctx, sentences["sentence"]), left_on="sentence", right_on="text")
    # each mention as the finding of every item it names; in report order, since joins do not keep row order and
    # the messages quote the clauses in the order they come (the same run must give the same table)
    said = (
        said.filter(_abnormal("m_status"))
        .join(kin(ctx), on="entry")
        .join(final.select("study_id", "finding"), on=["study_id", "finding"], how="semi")
    )
    # a kin's mention that an item of its own entry carries gives the other item no side: "bibasal interstitial
    # opacity and left basal platelike opacity" is a bilateral interstitial pattern and a left lung opacity
    carried = final.select("study_id", pl.col("finding").alias("entry")).unique()
    said = pl.concat(
        [
            said.filter(pl.col("entry") == pl.col("finding")),
            said.filter(pl.col("entry") != pl.col("finding")).join(carried, on=["study_id", "entry"], how="anti"),
        ]
    ).sort("_pos", "clause", maintain_order=True)

    # sides: every side the items have must be one the report allows; a report's "bilateral" needs both
    keys = ["study_id", "finding"]
    covered = sided.group_by(keys).agg(
        (
            (pl.col("laterality") == "bilateral").any()
            | ((pl.col("laterality") == "left").any() & (pl.col("laterality") == "right").any())
        ).alias("both_sides")
    )
    s = sided.join(sides_given(said, keys), on=keys).join(covered, on=keys)
    wrong = s.filter(~supported("laterality"))
    half = s.filter(supported("laterality") & pl.col("said_bilateral") & ~pl.col("both_sides"))
    out = [
        problems(
            wrong,
            "side_contradicts_report",
            pl.format(
                "{} is {} in the final perception, the report gives {}", "finding", "laterality", "named"
            ),
        ),
        problems(
            half,
            "side_contradicts_report",
            pl.format(
                "{} is {} only in the final perception, the report gives it on both sides: {}",
                "finding",
                "laterality",
                "named",
            ),
        ),
    ]

    # grades: the item's step must be one the report's mentions of it on that side use
    graded_said = said.filter(pl.col("levels").list.len() > 0)
    g = graded.join(graded_said, on=keys).filter(
        (pl.col("m_side") == pl.col("laterality"))
        | pl.col("m_side").is_in(["none", "bilateral"])
        | pl.col("laterality").is_in(["none", "bilateral"])
    )
    per = g.group_by("key").agg(
        pl.col("study_id", "finding", "severity", "level").first(),
        pl.col("levels").list.explode(keep_nulls=False, empty_as_null=False).unique().alias("allowed"),
        pl.format('"{}"', pl.col("clause")).unique(maintain_order=True).str.join(", ").alias("named"),
    )
    off = per.filter(~pl.col("allowed").list.contains(pl.col("level")))
    out.append(
        problems(
            off,
            "grade_contradicts_report",
            pl.format("{} is {} in the final perception, the report says {}", "finding", "severity", "named"),
        )
    )
    return out


@check(
    "evidence",
    codes={
        "evidence_contradicts_item": "error",
        "evidence_side_mismatch": "error",
        "evidence_mentions_unsupported_finding": "warning",
        "side_contradicts_report": "error",
        "grade_contradicts_report": "warning",
    },
)
def evidence(ctx: Context) -> pl.DataFrame:
    """Each item's evidence, and the final report, agree with the item's status, side and grade."""
    return concat_problems([*_evidence_problems(ctx), *_report_problems(ctx)])
