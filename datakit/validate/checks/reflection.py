"""Check 4, reflection: a real second look, whose corrections start from the draft and end in the final state.

- ``no_recheck``: nothing corrected, and no re-checked item names a region, finding, side or size (a reflection that
  finds nothing must still say what it checked).
- ``vague_reflection``: corrections, but the re-checked items name nothing specific.
- ``correction_not_in_draft``: a correction's ``before`` is not what the draft has.
- ``after_not_final``: a correction's ``after`` is not in the final perception (another correction undid it).
- ``after_contradicts_report``: the labeler reads the final report the other way round from ``after``.
- ``correction_changes_nothing``: ``before`` equals ``after``.
- ``correction_kind_mismatch``: the change is not the kind named (a ``laterality`` correction keeping the
  side).
- ``vague_note``: a correction's note is under three words.
"""

from __future__ import annotations

import re
from functools import lru_cache

import polars as pl

from datakit.semantics import ABNORMAL, state_expr
from datakit.validate.context import Context, positive_names
from datakit.validate.registry import check, concat_problems, problems

# Word starts that make a re-checked item specific: anatomy, devices, sides and sizes (knowledge terms are
# added).
SPECIFIC = (
    "trache",
    "carina",
    "bronch",
    "airway",
    "lung",
    "lobe",
    "lobar",
    "apex",
    "apic",
    "base",
    "basal",
    "basilar",
    "zone",
    "hil",
    "heart",
    "cardi",
    "mediastin",
    "aort",
    "diaphragm",
    "hemidiaphragm",
    "costophrenic",
    "pleura",
    "fissure",
    "rib",
    "clavic",
    "spine",
    "spinal",
    "vertebra",
    "scapul",
    "shoulder",
    "soft tissue",
    "bone",
    "osseous",
    "abdomen",
    "stomach",
    "bowel",
    "tube",
    "line",
    "catheter",
    "lead",
    "device",
    "wire",
    "clip",
    "tip",
    "side",
    "left",
    "right",
    "bilateral",
    "size",
    "grade",
    "extent",
    "volume",
    "contour",
    "margin",
    "silhouette",
    "angle",
    "lateral view",
    "frontal view",
    "retrocardiac",
    "hemithora",
    "chest wall",
    "thorac",
)
GENERIC = {
    "with",
    "from",
    "that",
    "this",
    "other",
    "normal",
    "abnormal",
    "finding",
    "findings",
    "image",
    "images",
    "study",
    "chest",
    "view",
    "film",
    "seen",
    "sign",
    "signs",
    "disease",
    "process",
    "acute",
    "none",
    "change",
}


@lru_cache(maxsize=4)
def _specific_regex(terms: tuple[str, ...]) -> str:
    words = set(SPECIFIC)
    for term in terms:
        words.update(w for w in re.findall(r"[a-z]+", term.lower()) if len(w) >= 4 and w not in GENERIC)
    return (
        r"(?i)(?-u:\b)(?:" + "|".join(pl.escape_regex(w) for w in sorted(words, key=len, reverse=True)) + ")"
    )


def _abnormal(prefix: str) -> pl.Expr:
    return pl.col(f"{prefix}status").is_in(ABNORMAL)


def _label(kind: str = "kind") -> pl.Expr:
    return pl.format("correction {} ({} {})", pl.col("corr") + 1, pl.col(kind), pl.col("finding"))


def _recheck(ctx: Context) -> list[pl.DataFrame]:
    terms = tuple(t for e in ctx.kb.entries.values() for t in e.terms) + tuple(
        f"{r.id} {r.name}" for r in ctx.kb.regions.values()
    )
    items = ctx.reflection.select("study_id", "checked", "n_corrections").explode("checked")
    spec = items.group_by("study_id").agg(
        pl.col("checked").str.contains(_specific_regex(terms)).fill_null(False).any().alias("specific"),
        pl.col("n_corrections").first(),
        pl.col("checked").str.slice(0, 60).str.join("; ").alias("said"),
    )
    vague = spec.filter(~pl.col("specific"))
    msg = pl.format('the re-checked items name no region, finding, side or size: "{}"', pl.col("said"))
    return [
        problems(
            vague.filter(pl.col("n_corrections") == 0),
            "no_recheck",
            pl.lit("nothing was corrected and ") + msg.str.slice(4),
        ),
        problems(vague.filter(pl.col("n_corrections") > 0), "vague_reflection", msg),
    ]


def _report_reading(ctx: Context, corr: pl.DataFrame) -> pl.DataFrame:
    """``after_contradicts_report``: corrections whose after state the labeler's reading denies."""
    read = ctx.report_labels
    if read is None or corr.height == 0:
        return problems(corr.clear(), "after_contradicts_report", "")
    long = read.unpivot(index="study_id", variable_name="chexpert", value_name="read").drop_nulls("read")
    mapped = (
        corr.filter(pl.col("finding") != "no_finding")
        .join(ctx.entries.select("entry_id", "chexpert"), left_on="finding", right_on="entry_id")
        .join(long, on=["study_id", "chexpert"])
    )
    # a label read positive may come from another finding of the same label that the final perception keeps
    others = (
        ctx.final.filter(pl.col("status").is_in(ABNORMAL))
        .join(ctx.entries.select("entry_id", "chexpert"), left_on="finding", right_on="entry_id")
        .select("study_id", "chexpert", pl.col("finding").alias("other"))
    )
    explained = (
        mapped.join(others, on=["study_id", "chexpert"])
        .filter(pl.col("other") != pl.col("finding"))
        .select("study_id", "corr")
        .unique()
        .with_columns(pl.lit(True).alias("explained"))
    )
    mapped = mapped.join(explained, on=["study_id", "corr"], how="left")
    clash = mapped.filter(
        (_abnormal("after_") & (pl.col("read") == 0))
        | (~_abnormal("after_") & (pl.col("read") == 1) & pl.col("explained").is_null())
    )
    word = pl.col("read").replace_strict(
        {1: "positive", 0: "negative", -1: "uncertain"}, return_dtype=pl.Utf8
    )
    msg = pl.format(
        "{}: after is {} but the report reads {} as {}",
        _label(),
        state_expr("after_"),
        pl.col("chexpert"),
        word,
    )
    nf = corr.filter(pl.col("finding") == "no_finding").join(
        read.select("study_id", pl.col("no_finding").alias("r_nf"), positive_names((1,)).alias("r_pos")),
        on="study_id",
    )
    nf_abnormal = nf.filter((pl.col("after_status") == "absent") & (pl.col("r_nf") == 1))
    nf_normal = nf.filter((pl.col("after_status") == "present") & (pl.col("r_pos") != ""))
    return concat_problems(
        [
            problems(clash, "after_contradicts_report", msg),
            problems(
                nf_abnormal,
                "after_contradicts_report",
                pl.format("{}: after says the study is abnormal but the report reads as normal", _label()),
            ),
            problems(
                nf_normal,
                "after_contradicts_report",
                pl.format(
                    "{}: after says the study is normal but the report reads positive: {}",
                    _label(),
                    pl.col("r_pos"),
                ),
            ),
        ]
    )


def _after_in_final(ctx: Context, corr: pl.DataFrame) -> pl.DataFrame:
    """``after_not_final``: matched corrections whose after state the final perception does not hold."""
    m = corr.filter(pl.col("matched") & (pl.col("finding") != "no_finding"))
    final = ctx.final
    held = m.join(
        final.select("study_id", "finding", "status", "laterality", "severity").unique(),
        left_on=["study_id", "finding", "after_status", "after_laterality", "after_severity"],
        right_on=["study_id", "finding", "status", "laterality", "severity"],
        how="semi",
        nulls_equal=True,
    )
    still = final.filter(pl.col("status").is_in(ABNORMAL)).select("study_id", "finding").unique()
    absent_ok = m.filter(~_abnormal("after_")).join(still, on=["study_id", "finding"], how="anti")
    ok = pl.concat([held.select("study_id", "corr"), absent_ok.select("study_id", "corr")]).unique()
    bad = m.join(ok, on=["study_id", "corr"], how="anti")
    return problems(
        bad,
        "after_not_final",
        pl.format(
            "{}: after ({}) is not in the final perception (another correction changes it again)",
            _label(),
            state_expr("after_"),
        ),
    )


@check(
    "reflection",
    codes={
        "no_recheck": "error",
        "vague_reflection": "warning",
        "correction_not_in_draft": "error",
        "after_not_final": "error",
        "after_contradicts_report": "error",
        "correction_changes_nothing": "error",
        "correction_kind_mismatch": "warning",
        "vague_note": "warning",
    },
)
def reflection(ctx: Context) -> pl.DataFrame:
    """The reflection re-checks something specific; each correction goes from the draft to the final state."""
    c = ctx.corrections
    unmatched = c.filter(~pl.col("matched"))
    same = (
        (pl.col("before_status") == pl.col("after_status"))
        & pl.col("before_laterality").eq_missing(pl.col("after_laterality"))
        & pl.col("before_severity").eq_missing(pl.col("after_severity"))
    )
    fits = (
        pl.when(pl.col("kind") == "missed")
        .then(~_abnormal("before_") & _abnormal("after_"))
        .when(pl.col("kind") == "hallucinated")
        .then(_abnormal("before_") & ~_abnormal("after_"))
        .when(pl.col("kind") == "laterality")
        .then(pl.col("before_laterality").ne_missing(pl.col("after_laterality")))
        .when(pl.col("kind") == "severity")
        .then(pl.col("before_severity").ne_missing(pl.col("after_severity")))
        .otherwise(pl.lit(True))
    )
    short = c.filter(pl.col("note").str.count_matches(r"[A-Za-z]+") < 3)
    return concat_problems(
        [
            *_recheck(ctx),
            problems(
                unmatched,
                "correction_not_in_draft",
                pl.format(
                    "{}: before ({}) is not in the draft, which has {}",
                    _label(),
                    state_expr("before_"),
                    pl.col("draft_state"),
                ),
            ),
            _after_in_final(ctx, c),
            _report_reading(ctx, c),
            problems(
                c.filter(same),
                "correction_changes_nothing",
                pl.format("{}: before and after are both {}", _label(), state_expr("before_")),
            ),
            problems(
                c.filter(~same & ~fits),
                "correction_kind_mismatch",
                pl.format(
                    "{}: {} → {} is not a {} correction",
                    _label(),
                    state_expr("before_"),
                    state_expr("after_"),
                    pl.col("kind"),
                ),
            ),
            problems(
                short,
                "vague_note",
                pl.format(
                    '{}: the note "{}" does not say what the second look showed', _label(), pl.col("note")
                ),
            ),
        ]
    )
