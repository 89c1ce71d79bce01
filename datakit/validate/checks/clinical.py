"""Check 2, clinical agreement: the final report, perception and conclusions against the study's labels.

Labels follow the CheXpert convention (stanfordmlgroup/chexpert-labeler): 1 positive, -1 uncertain, 0 negative, null not
mentioned. A label column counts the knowledge entries mapped to it (``Entry.chexpert``). A study labelled No
Finding (1) says every other observation but Support Devices is absent; a study with any other observation
positive or uncertain is not normal.

- ``report_contradicts_labels``: the labeler reads a label of the final report as positive where the study's
  label is negative, or the reverse; or reads the whole report as normal while the labels have a positive
  finding (with ``validate.label_text = "impression"`` also: the study is labelled No Finding and the
  impression reads positive).
- ``label_not_perceived``: a positive or uncertain label with no present or uncertain perceived finding of it.
- ``status_mismatch``: it is perceived (or concluded) only with the other status (present for an uncertain
  label).
- ``perceived_but_negative``: a finding perceived as present where its label is negative, or where the study
  is labelled No Finding and the final report does not name it (the finding reader over the whole report).
- ``uncertain_but_negative``: the same, perceived or concluded as uncertain.
- ``label_not_concluded`` / ``conclusion_contradicts_label`` / ``concluded_normal_but_abnormal``: the same
  comparisons for the final reasoning conclusions.
"""

from __future__ import annotations

import polars as pl

from datakit import semantics as sem
from datakit import tables
from datakit.semantics import ABNORMAL
from datakit.validate.checks import mentions
from datakit.validate.context import Context, positive_names
from datakit.validate.registry import check, concat_problems, problems

WORD = {1: "positive", 0: "negative", -1: "uncertain"}
_word = {str(k): v for k, v in WORD.items()}


def _name(col: str) -> pl.Expr:
    return pl.col(col).replace_strict(tables.LABELS, default=pl.col(col))


def _value_word(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Utf8).replace_strict(_word, default="?")


def _evidence(ctx: Context, clash: pl.DataFrame) -> pl.Series:
    """For each (study_id, label, read) row, the words the labeler read it from ("" when it cannot say)."""
    explain = getattr(ctx.labeler, "explain", None)
    if explain is None or clash.height == 0:
        return pl.Series([""] * clash.height, dtype=pl.Utf8)
    text_of = dict(ctx.label_texts.join(clash.select("study_id").unique(), on="study_id").iter_rows())
    out = []
    for sid, label, read in clash.select("study_id", "label", "read").iter_rows():
        said = [m for m in explain(text_of.get(sid)) if m.label == label and m.status == read]
        if said:
            m = said[0]
            out.append(f'"{m.phrase}"' + (f', cue "{m.cue}"' if m.cue else ""))
        else:
            out.append("")
    return pl.Series(out, dtype=pl.Utf8)


def report_vs_labels(ctx: Context) -> pl.DataFrame:
    """``report_contradicts_labels``: the labeler's reading of the final report against the study's labels."""
    read = ctx.report_labels
    if read is None:
        return problems(ctx.labels.clear(), "report_contradicts_labels", "")
    long = read.unpivot(index="study_id", variable_name="label", value_name="read").drop_nulls("read")
    pair = long.join(ctx.labels_long, on=["study_id", "label"])
    clash = pair.filter(
        ((pl.col("read") == 1) & (pl.col("value") == 0)) | ((pl.col("read") == 0) & (pl.col("value") == 1))
    )
    msg = pl.format(
        "the report reads {} as {}, the labels say {}",
        _name("label"),
        _value_word("read"),
        _value_word("value"),
    )
    clash = clash.with_columns(_evidence(ctx, clash).alias("evidence"))
    msg = msg + pl.when(pl.col("evidence") != "").then(pl.format(" ({})", pl.col("evidence"))).otherwise(
        pl.lit("")
    )
    read_pos = read.select(
        "study_id", pl.col("no_finding").alias("r_nf"), positive_names((1,)).alias("r_pos")
    )
    label_pos = ctx.labels.select(
        "study_id", pl.col("no_finding").alias("l_nf"), positive_names((1,)).alias("l_pos")
    )
    norm = read_pos.join(label_pos, on="study_id")
    normal_read = norm.filter((pl.col("r_nf") == 1) & (pl.col("l_pos") != ""))
    # only when the labeler read what the labels were made from: findings may name more than the impression
    strict = ctx.config.label_text == "impression"
    normal_label = norm.filter((pl.col("l_nf") == 1) & (pl.col("r_pos") != "") & pl.lit(strict))
    return concat_problems(
        [
            problems(clash, "report_contradicts_labels", msg),
            problems(
                normal_read,
                "report_contradicts_labels",
                pl.format(
                    "the report reads as normal (No Finding), the labels say positive: {}", pl.col("l_pos")
                ),
            ),
            problems(
                normal_label,
                "report_contradicts_labels",
                pl.format("the study is labelled No Finding, the report reads positive: {}", pl.col("r_pos")),
            ),
        ]
    )


_ALSO = pl.DataFrame(
    [(e, lab) for e, labs in sem.ALSO_LABELS.items() for lab in labs],
    schema={"entry_id": pl.String, "chexpert": pl.String},
    orient="row",
)


def _mapped(frame: pl.DataFrame, ctx: Context) -> pl.DataFrame:
    """``frame`` (with ``finding``) joined to the label column each finding counts towards.

    An entry of :data:`~datakit.semantics.ALSO_LABELS` counts towards two.
    """
    entries = pl.concat([ctx.entries.select("entry_id", "chexpert"), _ALSO])
    return frame.join(entries, left_on="finding", right_on="entry_id").filter(
        pl.col("chexpert").is_not_null() & (pl.col("chexpert") != "no_finding")
    )


def _named_in_report(ctx: Context, studies: pl.DataFrame) -> pl.DataFrame:
    """study_id, chexpert: the labels of the findings the final reports of ``studies`` name as abnormal."""
    sentences = ctx.report_sentences.join(studies, on="study_id", how="semi")
    named = sentences.join(
        mentions.read(ctx, sentences["sentence"]), left_on="sentence", right_on="text"
    ).filter(pl.col("m_status").is_in(ABNORMAL))
    return (
        _mapped(named.select("study_id", pl.col("entry").alias("finding")), ctx)
        .select("study_id", "chexpert")
        .unique()
    )


def _against_labels(ctx: Context, found: pl.DataFrame, part: str, codes: dict[str, str]) -> pl.DataFrame:
    """Compare the findings of ``part`` (perception or reasoning) with the labels.

    ``found`` has study_id, finding, status and desc; the problems are: missing, with the other status,
    contradicting.
    """
    adjective = {"perception": "perceived", "reasoning": "concluded"}[part]
    mapped = _mapped(found, ctx)
    per = mapped.group_by("study_id", "chexpert").agg(
        (pl.col("status") == "present").any().alias("has_present"),
        (pl.col("status") == "uncertain").any().alias("has_uncertain"),
        pl.col("desc")
        .filter(pl.col("status").is_in(ABNORMAL))
        .unique(maintain_order=True)
        .str.join("; ")
        .alias("seen"),
    )
    want = ctx.labels_long.filter(pl.col("value").is_in([1, -1]) & (pl.col("label") != "no_finding"))
    j = want.join(
        per, left_on=["study_id", "label"], right_on=["study_id", "chexpert"], how="left"
    ).with_columns(pl.col("has_present").fill_null(False), pl.col("has_uncertain").fill_null(False))
    missing = j.filter(~pl.col("has_present") & ~pl.col("has_uncertain"))
    other = j.filter(
        ((pl.col("value") == 1) & ~pl.col("has_present") & pl.col("has_uncertain"))
        | ((pl.col("value") == -1) & ~pl.col("has_uncertain") & pl.col("has_present"))
    )
    out = [
        problems(
            missing,
            codes["missing"],
            pl.format(
                "{} is labelled {} but no {} finding counts towards it",
                _name("label"),
                _value_word("value"),
                pl.lit(adjective),
            ),
        ),
        problems(
            other,
            "status_mismatch",
            pl.format(
                "{} is labelled {} but the {} has it as {}",
                _name("label"),
                _value_word("value"),
                pl.lit(part),
                pl.col("seen"),
            ),
        ),
    ]
    # contradictions: abnormal where the label is negative, or where the study is labelled No Finding
    neg = ctx.labels_long.filter(pl.col("value") == 0).select(
        "study_id", "label", pl.lit("negative").alias("why")
    )
    normal = ctx.labels.filter(pl.col("no_finding") == 1).select("study_id")
    ab = mapped.filter(pl.col("status").is_in(ABNORMAL))
    hit_neg = ab.join(neg, left_on=["study_id", "chexpert"], right_on=["study_id", "label"])
    hit_normal = (
        ab.filter(pl.col("chexpert") != "support_devices")
        .join(normal, on="study_id")
        .join(neg, left_on=["study_id", "chexpert"], right_on=["study_id", "label"], how="anti")
    )
    # No Finding says the *labelled* text names nothing abnormal, and the labels may come from a part of the
    # report only (CheXpert labels MIMIC's impression, mimic-cxr txt/chexpert): a finding the final report names
    # (e.g. atelectasis in the findings under "no acute process") is the report's, not a hallucination. What
    # the label does contradict is a finding the report names nowhere, whatever validate.label_text says
    # (with "impression", a report naming it in the impression is report_contradicts_labels' business).
    hit_normal = hit_normal.join(
        _named_in_report(ctx, hit_normal.select("study_id").unique()),
        on=["study_id", "chexpert"],
        how="anti",
    ).with_columns(pl.lit("labelled No Finding").alias("why"))
    hits = pl.concat(
        [
            hit_neg.select("study_id", "chexpert", "status", "desc", "why"),
            hit_normal.select("study_id", "chexpert", "status", "desc", "why"),
        ]
    )
    because = (
        pl.when(pl.col("why") == "negative")
        .then(pl.format("{} is labelled negative", _name("chexpert")))
        .otherwise(pl.lit("the study is labelled No Finding and the report does not name it"))
    )
    msg = pl.format("the {} has {} but {}", pl.lit(part), pl.col("desc"), because)
    out.append(problems(hits.filter(pl.col("status") == "present"), codes["contradicts"], msg))
    out.append(problems(hits.filter(pl.col("status") == "uncertain"), "uncertain_but_negative", msg))
    return concat_problems(out)


def perception_vs_labels(ctx: Context) -> pl.DataFrame:
    """The final perception against the labels."""
    ev = pl.col("evidence").str.slice(0, 80)
    found = ctx.final.filter(pl.col("finding") != "normal").select(
        "study_id",
        "finding",
        "status",
        pl.format('{} {} ({}: "{}")', "finding", "status", pl.col("region").fill_null("?"), ev).alias("desc"),
    )
    return _against_labels(
        ctx, found, "perception", {"missing": "label_not_perceived", "contradicts": "perceived_but_negative"}
    )


def conclusions_vs_labels(ctx: Context) -> pl.DataFrame:
    """The final reasoning conclusions against the labels, and the normal/abnormal conclusion."""
    concl = ctx.conclusions
    found = concl.filter(pl.col("finding") != "no_finding").select(
        "study_id", "finding", "status", pl.format("{} {}", "finding", "status").alias("desc")
    )
    out = [
        _against_labels(
            ctx,
            found,
            "reasoning",
            {"missing": "label_not_concluded", "contradicts": "conclusion_contradicts_label"},
        )
    ]
    abnormal = ctx.labels.select("study_id", positive_names((1, -1)).alias("pos")).filter(pl.col("pos") != "")
    said_normal = concl.filter((pl.col("finding") == "no_finding") & (pl.col("status") == "present"))
    wrong = said_normal.join(abnormal, on="study_id")
    out.append(
        problems(
            wrong,
            "concluded_normal_but_abnormal",
            pl.format("the reasoning concludes the study is normal, but the labels have {}", pl.col("pos")),
        )
    )
    return concat_problems(out)


@check(
    "clinical",
    codes={
        "report_contradicts_labels": "error",
        "label_not_perceived": "error",
        "perceived_but_negative": "error",
        "uncertain_but_negative": "warning",
        "status_mismatch": "warning",
        "label_not_concluded": "error",
        "conclusion_contradicts_label": "error",
        "concluded_normal_but_abnormal": "error",
    },
)
def clinical(ctx: Context) -> pl.DataFrame:
    """The final report, perception and conclusions agree with the study's labels."""
    return concat_problems([report_vs_labels(ctx), perception_vs_labels(ctx), conclusions_vs_labels(ctx)])
