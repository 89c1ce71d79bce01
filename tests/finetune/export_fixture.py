"""A small ``trl`` export made from the demo run's traces, in the export contract's layout.

One function, :func:`make_trl_export`: when ``datakit export`` lands, its body becomes a call to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SYSTEM = "You are an expert radiologist. Look at the chest radiograph, think step by step, then write the report."
USER = "Write the findings and impression for this chest X-ray study."
TAGS = {"think": ("<think>", "</think>"), "thought": ("<|begin_of_thought|>", "<|end_of_thought|>")}


def make_trl_export(run: Path, dest: Path, *, tags: str = "think", image_paths: str = "absolute") -> Path:
    """Write ``dest/{train,val,test}.jsonl`` from an annotated run (frontal image first) and return ``dest``."""
    import polars as pl

    from datakit.trace import render_assistant, render_report, render_think

    studies = pl.read_parquet(run / "studies.parquet").select("study_id", "split")
    images = pl.read_parquet(run / "images.parquet")
    traces = pl.read_parquet(run / "traces.parquet").select("study_id", "trace_json")
    frontal_first = {"PA": 0, "AP": 1}
    dest.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for study_id, split, trace_json in studies.join(traces, on="study_id").sort("study_id").iter_rows():
        trace = json.loads(trace_json)
        imgs = images.filter(pl.col("study_id") == study_id).sort("image_id").to_dicts()
        imgs.sort(key=lambda r: frontal_first.get(r["view"], 2))
        paths = [(run / r["converted_path"]).resolve() for r in imgs]
        if image_paths == "relative":
            paths = [Path(os.path.relpath(p, dest)) for p in paths]
        assistant: dict = {"role": "assistant"}
        if tags == "reasoning_content":
            assistant |= {"content": [{"type": "text", "text": render_report(trace)}],
                          "reasoning_content": render_think(trace)}
        elif tags == "none":
            assistant["content"] = [{"type": "text", "text": render_report(trace)}]
        else:
            assistant["content"] = [{"type": "text", "text": render_assistant(trace, tags=TAGS[tags])}]
        row = {
            "study_id": f"s{study_id}",
            "images": [str(p) for p in paths],
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                {"role": "user", "content": [*({"type": "image"} for _ in paths), {"type": "text", "text": USER}]},
                assistant,
            ],
        }
        by_split[split].append(json.dumps(row, ensure_ascii=False))
    for split, lines in by_split.items():
        (dest / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return dest
