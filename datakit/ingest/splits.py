"""Train/val/test splits by patient: the source's official split where it has one, else a stable hash split."""

from __future__ import annotations

import hashlib

import polars as pl

from datakit.config import SplitConfig
from datakit.errors import SplitLeakError
from datakit.rundir import Quarantine


def hash_split(subject_id: str, ratios: tuple[float, float, float], seed: int) -> str:
    """Deterministic split of one subject: the same subject always lands in the same split for a given seed.

    A hash (not a shuffle) keeps every subject's split stable when the dataset grows, at the price of ratios that
    are exact only on average.
    """
    digest = hashlib.blake2b(f"{seed}:{subject_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < ratios[0]:
        return "train"
    if u < ratios[0] + ratios[1]:
        return "val"
    return "test"


def assign_splits(studies: pl.DataFrame, cfg: SplitConfig, quarantine: Quarantine) -> pl.DataFrame:
    """Fill ``split`` and ``split_source``.

    ``official`` keeps the source's split and gives a study without one the split of the same subject's other
    studies (else it is set aside); ``patient`` ignores the source's split and hashes subjects; ``auto`` is
    ``official`` where the source has a split, else ``patient``.
    """
    has_official = studies["split"].is_not_null().any() if studies.height else False
    strategy = cfg.strategy
    if strategy == "auto":
        strategy = "official" if has_official else "patient"
    if strategy == "patient":
        subjects = studies["subject_id"].unique().to_list()
        mapping = {s: hash_split(s, cfg.ratios, cfg.seed) for s in subjects}
        return studies.with_columns(
            split=pl.col("subject_id").replace_strict(mapping, return_dtype=pl.Utf8),
            split_source=pl.lit("patient_hash"),
        )
    by_subject = (
        studies.filter(pl.col("split").is_not_null())
        .group_by("subject_id")
        .agg(pl.col("split").unique().sort().alias("subject_splits"))
    )
    studies = studies.join(by_subject, on="subject_id", how="left")
    fill = pl.when(pl.col("subject_splits").list.len() == 1).then(pl.col("subject_splits").list.first())
    studies = studies.with_columns(pl.coalesce("split", fill).alias("split"))
    missing = studies.filter(pl.col("split").is_null())
    for row in missing.iter_rows(named=True):
        quarantine.add(
            "study", row["study_id"], "no_split",
            f"study {row['study_id']} has no official split and its subject {row['subject_id']} has no other "
            "study to take one from; use --split patient for a patient-level split of everything",
            dataset=row.get("dataset"),
        )
    return studies.filter(pl.col("split").is_not_null()).drop("subject_splits").with_columns(
        split_source=pl.lit("official")
    )


def check_no_leak(studies: pl.DataFrame) -> None:
    """No subject may appear in two splits: checked, not assumed."""
    leaks = (
        studies.group_by("subject_id")
        .agg(pl.col("split").unique().sort())
        .filter(pl.col("split").list.len() > 1)
        .sort("subject_id")
    )
    if leaks.height:
        examples = ", ".join(f"{r['subject_id']} ({'/'.join(r['split'])})" for r in leaks.head(5).iter_rows(named=True))
        raise SplitLeakError(
            f"{leaks.height} subject(s) appear in more than one split, e.g. {examples}",
            hint="the source's split file is not patient-level; use --split patient to re-split by patient",
        )
