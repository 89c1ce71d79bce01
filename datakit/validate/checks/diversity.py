"""Check 8, diversity: near-identical think texts across many studies (a teacher collapsed onto a template).

The think text (perception, reasoning, reflection; not the report, which is the dataset's own) is cut into
sentences, each normalised (lower case, digits to 0, punctuation out) and hashed. A MinHash signature of
``bands × rows`` values estimates the Jaccard similarity of two traces' sentence sets; two traces share a band
when its ``rows`` values all agree, which happens mostly above a similarity of about ``(1/bands)^(1/rows)``
(0.8 with the defaults 6 × 8). The traces sharing a band bucket are near-identical to each other; a trace is
flagged (``near_duplicate``) when one of its buckets holds at least ``diversity_min_cluster_size`` traces
*and* ``diversity_min_cluster_share`` of all judged traces. Buckets are not chained into connected components
on purpose: a teacher that draws each sentence from a small pool (the offline teacher's normal studies) makes
chains of pairwise near-identical traces that join tens of thousands of traces no two of which need be alike.
Everything is vectorised (polars for the text, numpy for the hashes), so 227,835 traces take seconds.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from datakit.validate.context import Context
from datakit.validate.registry import check, no_problems, problems

_MUL = np.uint64(0x9E3779B97F4A7C15)


def buckets(
    ids: pl.Series, units: pl.DataFrame, bands: int, rows: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per study of ``ids``: the size of its largest band bucket and that bucket's key.

    ``units`` holds the hashed sentences (study_id, h); a think text without sentences has size 0.
    """
    n = len(ids)
    size = np.zeros(n, dtype=np.int64)
    key = np.zeros(n, dtype=np.uint64)
    index = ids.to_frame("study_id").with_row_index("row")
    units = units.join(index, on="study_id").select("row", "h").sort("row", "h")
    if units.height == 0:
        return size, key
    row = units["row"].to_numpy()
    h = units["h"].to_numpy().astype(np.uint64, copy=False)
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    owners = row[starts]
    rng = np.random.default_rng(seed)
    salts = rng.integers(0, 2**63, size=(bands, rows), dtype=np.uint64)
    muls = rng.integers(0, 2**63, size=(bands, rows), dtype=np.uint64) | np.uint64(1)
    best = np.zeros(len(owners), dtype=np.int64)
    best_key = np.zeros(len(owners), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            sig = np.full(len(owners), np.uint64(b + 1), dtype=np.uint64)
            for r in range(rows):
                # a min-hash: the smallest of the sentence hashes under one random bijection (xor, odd
                # multiply)
                sig = (sig ^ np.minimum.reduceat((h ^ salts[b, r]) * muls[b, r], starts)) * _MUL
            _, inverse, counts = np.unique(sig, return_inverse=True, return_counts=True)
            here = counts[inverse.ravel()]
            better = here > best
            best = np.where(better, here, best)
            best_key = np.where(better, sig, best_key)
    size[owners] = best
    key[owners] = best_key
    return size, key


@check("diversity", codes={"near_duplicate": "warning"})
def diversity(ctx: Context) -> pl.DataFrame:
    """Near-identical think texts shared by many studies are flagged."""
    cfg = ctx.config
    ids = ctx.texts["study_id"]
    if len(ids) < cfg.diversity_min_cluster_size:
        return no_problems()
    size, key = buckets(ids, ctx.think_units, cfg.diversity_bands, cfg.diversity_rows)
    floor = max(cfg.diversity_min_cluster_size, math.ceil(cfg.diversity_min_cluster_share * len(ids)))
    frame = ids.to_frame().with_columns(pl.Series("size", size), pl.Series("key", key, dtype=pl.UInt64))
    flagged = frame.filter(pl.col("size") >= floor)
    if flagged.height == 0:
        return no_problems()
    peers = flagged.group_by("key").agg(pl.col("study_id").head(4).alias("peers"))
    flagged = flagged.join(peers, on="key").with_columns(
        pl.col("peers").list.set_difference(pl.concat_list(pl.col("study_id"))).list.head(3).list.join(", ")
    )
    msg = pl.format(
        "near-identical think text: one of {} traces ({}% of the run) that share it, e.g. with {}",
        pl.col("size"),
        (pl.col("size") * 100 / len(ids)).round(1),
        pl.col("peers"),
    )
    return problems(flagged, "near_duplicate", msg)
