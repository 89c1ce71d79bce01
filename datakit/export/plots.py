"""The dataset card's figures as PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from datakit.export.stats import Stats
from datakit.tables import LABELS, SPLITS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(folder: Path, stats: Stats, unit: str, formats: list[str]) -> dict[str, str]:
    """Write the figures; returns name → file name (relative to ``folder``'s parent)."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(formats))
    for i, name in enumerate(formats):
        ax.bar([j + i * width for j in range(len(SPLITS))], [stats.rows[(name, s)] for s in SPLITS], width,
               label=name)
    ax.set_xticks([j + width * (len(formats) - 1) / 2 for j in range(len(SPLITS))], SPLITS)
    ax.set_ylabel("rows")
    ax.set_title("Rows per split and format")
    ax.legend(fontsize=7)
    out["splits"] = _save(fig, folder / "splits.png", plt)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(LABELS)
    left = [0] * len(names)
    for status, colour in (("positive", "#c0392b"), ("uncertain", "#e67e22"), ("negative", "#2980b9"),
                           ("not mentioned", "#bdc3c7")):
        values = [stats.labels[c][status] for c in names]
        ax.barh([LABELS[c] for c in names], values, left=left, color=colour, label=status)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("studies")
    ax.set_title("CheXpert labels of the exported studies")
    ax.legend(fontsize=7, loc="lower right")
    out["labels"] = _save(fig, folder / "labels.png", plt)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    if stats.think_lengths:
        lengths, counts = zip(*sorted(stats.think_lengths.items()), strict=True)
        ax.hist(lengths, weights=counts, bins=min(60, max(5, len(lengths))), color="#16a085")
    ax.set_xlabel(f"think block length, {unit}")
    ax.set_ylabel("studies")
    ax.set_title("Think block length")
    out["think_length"] = _save(fig, folder / "think_length.png", plt)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    kinds = sorted(stats.corrections.items(), key=lambda kv: -kv[1])
    ax.bar([k for k, _ in kinds], [n for _, n in kinds], color="#8e44ad")
    ax.set_ylabel("traces / corrections")
    ax.set_title("Reflection corrections by kind (none: the reflection corrected nothing)")
    out["corrections"] = _save(fig, folder / "corrections.png", plt)
    return out


def _save(fig, path: Path, plt) -> str:
    fig.tight_layout()
    # no timestamp in the PNG metadata, so an unchanged export writes the same bytes
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return f"{path.parent.name}/{path.name}"
