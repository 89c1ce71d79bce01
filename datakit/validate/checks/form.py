"""Check 7, form: the assistant turn a trainer will see is well-formed, bounded, English, and has its images.

The turn is rendered with :func:`datakit.trace.render_assistant` (think block, then the report).

- ``think_tags``: the opening and the closing tag (``validate.think_tags``) do not occur exactly once each, in
  order (text inside the trace that contains a tag breaks the block; a common trainer
  complaint, e.g. hiyouga/LlamaFactory#9392).
- ``empty_section``: a perception item, reasoning step, re-checked item, summary or note that is only blanks.
- ``empty_report``: neither findings nor impression.
- ``think_too_short`` / ``think_too_long`` / ``report_too_short`` / ``report_too_long``: characters outside
  ``validate.min_think_chars`` … ``max_report_chars`` (the rendered think text; the report's findings and
  impression, without their headings).
- ``not_english``: a cheap heuristic, no model: the share of A–Z among letters, and English against other
  languages' common function words.
- ``image_count_mismatch``: ``traces.n_images`` differs from the study's images in images.parquet (the commonest
  LLaMA-Factory data error, hiyouga/LlamaFactory#5658).
"""

from __future__ import annotations

import polars as pl

from datakit.validate.context import Context
from datakit.validate.registry import check, concat_problems, problems

ENGLISH = (
    r"(?i)(?-u:\b)(?:the|of|and|is|are|was|no|not|with|in|on|at|to|a|an|there|this|that|which|or|as|be|by|for|from|"
    r"seen|without|both|left|right|normal|may|can|it|its)(?-u:\b)"
)
SAMPLE_CHARS = 2000  # the language of a text shows in its first paragraphs
OTHER = (
    r"(?i)(?-u:\b)(?:der|die|das|und|ist|nicht|ein|eine|mit|kein|keine|im|zu|auf|le|la|les|des|est|une|pas|et|du|sur|"
    r"dans|avec|de|el|los|las|del|una|es|hay|con|sin|que|por|para|il|di|che|della|sono|não|em|het|een|niet|geen)(?-u:\b)"
)


def _english(ctx: Context, column: str, label: str) -> pl.DataFrame:
    cfg = ctx.config
    text = pl.col(column)
    # a cheap pass finds the texts that could fail (a letter outside A-Z, a foreign function word, no English
    # one); only those are counted letter by letter, over their first SAMPLE_CHARS characters
    suspect = ctx.texts.filter(
        (text.str.len_chars() >= 20)
        & (text.str.contains(r"[\p{L}&&[^a-zA-Z]]") | text.str.contains(OTHER) | ~text.str.contains(ENGLISH))
    ).select("study_id", text.str.slice(0, SAMPLE_CHARS).alias("text"))
    stats = suspect.select(
        "study_id",
        pl.col("text").str.count_matches(r"\p{L}").alias("letters"),
        pl.col("text").str.count_matches(r"[A-Za-z]").alias("ascii"),
        pl.col("text").str.count_matches(ENGLISH).alias("en"),
        pl.col("text").str.count_matches(OTHER).alias("other"),
        pl.col("text").str.count_matches(r"\S+").alias("words"),
    )
    ascii_share = pl.col("ascii") / pl.col("letters")
    en_share = pl.col("en") / (pl.col("en") + pl.col("other"))
    bad = stats.filter(
        (pl.col("letters") >= 20)
        & (
            (ascii_share < cfg.min_ascii_letter_share)
            | (((pl.col("en") + pl.col("other")) >= 5) & (en_share < cfg.min_english_word_share))
            | ((pl.col("words") >= 50) & (pl.col("en") == 0))
        )
    )
    msg = pl.format(
        "the {} does not read as English: {}% of its letters are A-Z, {} English and {} other-language "
        "function words",
        pl.lit(label),
        (ascii_share * 100).round(0).cast(pl.Int64),
        pl.col("en"),
        pl.col("other"),
    )
    return problems(bad, "not_english", msg)


def _lengths(ctx: Context) -> list[pl.DataFrame]:
    cfg = ctx.config
    rep = pl.col("report")
    content = (
        rep.struct.field("findings").str.strip_chars().str.len_chars()
        + rep.struct.field("impression").str.strip_chars().str.len_chars()
    )
    n = ctx.texts.select("study_id", pl.col("think").str.len_chars().alias("think")).join(
        ctx.decoded.select("study_id", content.alias("report")), on="study_id"
    )
    out = []
    for part, code, cond, bound in (
        (
            "think",
            "think_too_short",
            pl.col("think") < cfg.min_think_chars,
            f"at least {cfg.min_think_chars}",
        ),
        ("think", "think_too_long", pl.col("think") > cfg.max_think_chars, f"at most {cfg.max_think_chars}"),
        (
            "report",
            "report_too_short",
            (pl.col("report") < cfg.min_report_chars) & (pl.col("report") > 0),
            f"at least {cfg.min_report_chars}",
        ),
        (
            "report",
            "report_too_long",
            pl.col("report") > cfg.max_report_chars,
            f"at most {cfg.max_report_chars}",
        ),
    ):
        label = "think text" if part == "think" else "report"
        out.append(
            problems(
                n.filter(cond),
                code,
                pl.format("the {} has {} characters ({} wanted)", pl.lit(label), pl.col(part), pl.lit(bound)),
            )
        )
    return out


def _blank(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.len_chars() == 0


def _empty_sections(ctx: Context) -> pl.DataFrame:
    r = ctx.reflection
    parts = [
        ctx.draft.filter(_blank("evidence")).select(
            "study_id", pl.format("perception item {} has no evidence", pl.col("item") + 1).alias("m")
        ),
        ctx.steps.filter(_blank("observation") | _blank("inference")).select(
            "study_id", pl.format("reasoning step {} is blank", pl.col("step") + 1).alias("m")
        ),
        r.explode("checked")
        .filter(_blank("checked"))
        .select("study_id", pl.lit("a re-checked item is blank").alias("m")),
        r.filter(_blank("summary")).select("study_id", pl.lit("the reflection summary is blank").alias("m")),
        ctx.corrections.filter(_blank("note")).select(
            "study_id", pl.format("the note of correction {} is blank", pl.col("corr") + 1).alias("m")
        ),
    ]
    found = (
        pl.concat(parts)
        .group_by("study_id", maintain_order=True)
        .agg(pl.col("m").unique(maintain_order=True).str.join("; "))
    )
    return problems(found, "empty_section", pl.col("m"))


def _images(ctx: Context) -> pl.DataFrame:
    counts = ctx.images.group_by("study_id").len("found")
    t = ctx.only_valid(ctx.traces.select("study_id", "n_images"))
    t = t.join(counts, on="study_id", how="left").with_columns(pl.col("found").fill_null(0))
    bad = t.filter(pl.col("n_images").cast(pl.Int64) != pl.col("found").cast(pl.Int64))
    return problems(
        bad,
        "image_count_mismatch",
        pl.format(
            "the trace is for {} image(s), images.parquet has {} for the study",
            pl.col("n_images"),
            pl.col("found"),
        ),
    )


@check(
    "form",
    codes={
        "think_tags": "error",
        "empty_section": "error",
        "empty_report": "error",
        "think_too_short": "error",
        "think_too_long": "warning",
        "report_too_short": "warning",
        "report_too_long": "warning",
        "not_english": "error",
        "image_count_mismatch": "error",
    },
)
def form(ctx: Context) -> pl.DataFrame:
    """The rendered think block and report are well-formed, of bounded length and English; images match."""
    texts = ctx.texts
    tags = texts.filter(pl.col("tag_problem").is_not_null())
    open_tag, close_tag = ctx.config.think_tags
    return concat_problems(
        [
            problems(
                tags,
                "think_tags",
                pl.format(
                    "the rendered turn is not one {}…{} block: {}",
                    pl.lit(open_tag),
                    pl.lit(close_tag),
                    pl.col("tag_problem"),
                ),
            ),
            _empty_sections(ctx),
            problems(
                texts.filter(_blank("report")),
                "empty_report",
                "the report has neither findings nor impression",
            ),
            *_lengths(ctx),
            _english(ctx, "think", "think text"),
            _english(ctx, "report", "report"),
            _images(ctx),
        ]
    )
