"""The dataset card, ``RUN/export/README.md``: what the data is, how it was made, what binds it, how to load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datakit import __version__
from datakit.export.plots import write_plots
from datakit.export.stats import Stats
from datakit.tables import LABELS, SPLITS

# The terms that bind each source dataset, and what they mean for this export.
TERMS = {
    "mimic-cxr": (
        "MIMIC-CXR / MIMIC-CXR-JPG (PhysioNet)",
        "PhysioNet Credentialed Health Data License 1.5.0 and its data use agreement: only credentialed users "
        "who signed the DUA may use the data, and it may not be redistributed. This export holds report text and "
        "images of MIMIC-CXR: **do not share it or upload it anywhere**; keep it where the source data may be.",
    ),
    "iu-xray": (
        "IU-Xray (Indiana University Chest X-ray Collection, NLM Open-i)",
        "CC BY-NC-ND 4.0: attribution, non-commercial use only, no derivatives. The reports are used as written; "
        "the traces derived from them are derivatives, so this export may not be redistributed.",
    ),
}
STYLES = {
    "think": "the think block in `<think>` … `</think>`, then the report",
    "thought": "the think block in `<|begin_of_thought|>` … `<|end_of_thought|>`, then the report",
    "reasoning_content": "the think text in a separate `reasoning_content` field (TRL); inline `<think>` tags "
                         "in the other formats",
    "none": "the report alone: **the plain image → report direct-SFT baseline**, without reasoning",
}


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_card(folder: Path, *, run: Any, config: Any, exporters: dict[str, Any], stats: Stats, unit: str,
               fallback_copies: int, n_traces: int) -> Path:
    """Write README.md and plots/ into ``folder`` (the export being built)."""
    ec = config.export
    plots = write_plots(folder / "plots", stats, unit, list(exporters))
    manifest = run.manifest().get("stages", {})
    kb = manifest.get("retrieve", {}).get("knowledge_fingerprint", "not recorded (no retrieve stage)")
    from datakit.export.record import Prompts

    prompts = Prompts(ec.prompts_dir, ec.system_template, ec.user_template, ec.tag_style, ec.system_prompt)
    baseline = ec.tag_style == "none"
    parts = [
        f"# Dataset card: {run.root.name}",
        "",
        ("Chest X-ray report generation, **direct-SFT baseline**: each example is the image(s) and an "
         "instruction, answered with the report alone (no reasoning)." if baseline else
         "Chest X-ray report generation with Med-R2-style reasoning: each example is the image(s) and an "
         "instruction, answered with a think block (perception region by region, reasoning citing radiology "
         "knowledge, reflection correcting the first look) and then the report (FINDINGS, IMPRESSION)."),
        "",
        "## How it was made",
        "",
        _table(["teacher", "model", "template hash", "schema", "studies"],
               [[t or "-", m or "-", s or "-", sc, n] for (t, m, s, sc), n in stats.provenance.most_common()]),
        "",
        f"- knowledge base fingerprint: `{kb}`",
        f"- export templates (`{ec.system_template}`, `{ec.user_template}`"
        f"{', from ' + ec.prompts_dir if ec.prompts_dir else ''}): `{prompts.sha}`",
        f"- assistant turn: {STYLES[ec.tag_style]}",
        f"- images: up to {ec.max_images} per study, frontal first (LLaVA: one, the first frontal); "
        f"mode `{ec.image_mode}`, paths `{ec.image_paths}` (ms-swift: always absolute)"
        + (f"; {fallback_copies} hard links fell back to copies" if fallback_copies else ""),
        f"- prior-study sentences in the report: {ec.prior_sentences}",
        f"- datakit {__version__}",
        "",
        "## Source data and its terms",
        "",
    ]
    for ds, n in sorted(stats.datasets.items()):
        name, terms = TERMS.get(ds, (ds, "see the source's own licence"))
        parts += [f"- **{name}**, {n:,} studies. {terms}"]
    parts += ["", "## Counts", "", f"{n_traces:,} traces in; {sum(stats.studies.values()):,} studies exported "
              f"({stats.flagged:,} of them flagged by validation warnings or review and kept).", ""]
    parts.append(_table(["format", *SPLITS, "file"], [
        [name, *(f"{stats.rows[(name, s)]:,}" for s in SPLITS), f"`{name}/{exp.split_file('train')}` …"]
        for name, exp in exporters.items()]))
    parts += ["", f"![rows per split]({plots['splits']})", "", "## Left out", ""]
    rows = [[reason, f"{n:,}"] for reason, n in stats.excluded.most_common()]
    rows += [[f"{code} ({fmt} only)", f"{n:,}"] for (fmt, code), n in stats.left_out.most_common()]
    parts.append(_table(["reason", "studies"], rows) if rows else "Nothing was left out.")
    if stats.review:
        parts += ["", "Review decisions (last per study): "
                  + ", ".join(f"{d} {n:,}" for d, n in sorted(stats.review.items())) + "."]
    parts += ["", "## Labels of the exported studies", "",
              _table(["label", "positive", "uncertain", "negative", "not mentioned"],
                     [[LABELS[c], *(f"{stats.labels[c][k]:,}" for k in ("positive", "uncertain", "negative",
                                                                           "not mentioned"))]
                      for c in LABELS]),
              "", f"![labels]({plots['labels']})", ""]
    if not baseline:
        q = stats.think_quantiles()
        parts += [f"## Think block length ({unit})", "",
                  _table(["min", "p10", "median", "p90", "p99", "max"], [[q.get(k, "-") for k in
                                                                         (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)]]),
                  "", f"![think length]({plots['think_length']})", "",
                  "## Reflection corrections", "",
                  _table(["kind", "count"], [[k, f"{n:,}"] for k, n in stats.corrections.most_common()]),
                  "", "`none`: traces whose reflection re-checked and corrected nothing.", "",
                  f"![corrections]({plots['corrections']})", ""]
    parts += ["## Loading", ""]
    per_split = {s: 1 for s in SPLITS}
    for name, exp in exporters.items():
        parts += [f"### {exp.framework} (`{name}/`)", "", exp.load_instructions(per_split), ""]
    text = "\n".join(parts).rstrip() + "\n"
    path = folder / "README.md"
    path.write_text(text.replace("RUN/export", str(run.root.resolve() / "export")), encoding="utf-8")
    return path
