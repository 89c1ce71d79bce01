"""Diversity: a teacher that collapsed onto a template is flagged; varied traces are not."""

from __future__ import annotations

import random
import re

import polars as pl

from datakit.config import ValidateConfig
from datakit.validate import validate
from tests.validate.builders import NORMAL_LABELS, Corpus, KeywordLabeler, normal_trace

WORDS = (
    "opacity lucency margin contour hilum apex base fissure angle shadow line density border zone rib "
    "clavicle spine heart aorta trachea carina bronchus vessel pleura diaphragm stomach bubble tube wire "
    "clip "
    "sharp faint subtle dense patchy linear round smooth thin thick upper lower middle central outer inner "
    "clear crisp normal small large narrow wide bright dark even uneven"
).split()


def varied_trace(rng: random.Random) -> dict:
    """A normal trace whose every sentence is drawn at random: no two alike."""
    trace = normal_trace()

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(9)).capitalize() + "."

    for it in trace["perception"]:
        it["evidence"] = sentence()
    trace["reasoning"][0]["observation"] = sentence()[:-1]
    trace["reasoning"][0]["inference"] = sentence()[:-1] + " [K:no_finding]."
    trace["reflection"]["checked"] = [
        "the lung " + sentence()[:-1].lower(),
        "the heart " + sentence()[:-1].lower(),
    ]
    trace["reflection"]["summary"] = sentence()
    return trace


def _run(corpus: Corpus, size: int = 10, share: float = 0.01) -> pl.DataFrame:
    t = corpus.tables()
    config = ValidateConfig(diversity_min_cluster_size=size, diversity_min_cluster_share=share)
    out = validate(t["traces"], t["studies"], t["images"], t["hits"], labeler=KeywordLabeler(), config=config)
    return out.filter(pl.col("check") == "diversity")


def test_a_collapsed_template_is_flagged_and_varied_traces_are_not():
    rng = random.Random(7)
    corpus = Corpus()
    template = varied_trace(rng)
    for i in range(14):
        corpus.add(f"t{i:02d}", template, NORMAL_LABELS)
    for i in range(12):  # the same template with one sentence changed: near-identical, not identical
        near = varied_trace(rng)
        near["perception"] = [dict(x) for x in template["perception"]]
        near["reasoning"], near["reflection"] = template["reasoning"], template["reflection"]
        near["perception"][3]["evidence"] = (
            "The cardiac silhouette is " + rng.choice(WORDS) + " and " + rng.choice(WORDS) + " today."
        )
        corpus.add(f"n{i:02d}", near, NORMAL_LABELS)
    for i in range(30):
        corpus.add(f"v{i:02d}", varied_trace(rng), NORMAL_LABELS)
    rows = _run(corpus)
    flagged = set(rows.filter(~pl.col("passed"))["study_id"])
    copies = {f"t{i:02d}" for i in range(14)}
    near = {f"n{i:02d}" for i in range(12)}
    assert copies <= flagged and not flagged - copies - near
    assert len(flagged & near) >= 10  # LSH is approximate: a near copy escapes a band with probability ~0.45
    row = rows.filter(pl.col("study_id") == "t00").row(0, named=True)
    assert row["code"] == "near_duplicate" and row["severity"] == "warning"
    assert re.match(
        r"near-identical think text: one of (\d+) traces \([0-9.]+% of the run\) that share it, "
        r"e\.g\. with [nt]\d\d",
        row["message"],
    )
    assert 14 <= int(re.search(r"one of (\d+)", row["message"]).group(1)) <= 26


def test_small_clusters_and_small_runs_are_not_flagged():
    rng = random.Random(3)
    corpus = Corpus()
    template = varied_trace(rng)
    for i in range(9):  # under diversity_min_cluster_size
        corpus.add(f"t{i}", template, NORMAL_LABELS)
    for i in range(30):
        corpus.add(f"v{i}", varied_trace(rng), NORMAL_LABELS)
    assert _run(corpus)["passed"].all()
    # the floor is the larger of the size and the share: 9 of 39 traces is 23 %
    assert (~_run(corpus, size=5, share=0.2)["passed"]).sum() == 9
    assert _run(corpus, size=5, share=0.25)["passed"].all()
