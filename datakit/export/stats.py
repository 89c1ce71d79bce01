"""What the dataset card counts, gathered as the rows stream by: memory does not grow with the studies."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datakit.tables import LABEL_COLUMNS


@dataclass
class Stats:
    """Counters of one batch or of the whole export; :meth:`merge` adds another one."""

    rows: Counter = field(default_factory=Counter)  # (format, split) → rows written
    left_out: Counter = field(default_factory=Counter)  # (format, code) → rows an export check left out
    excluded: Counter = field(default_factory=Counter)  # reason → studies left out of every format
    studies: Counter = field(default_factory=Counter)  # split → studies exported (passed the image checks)
    datasets: Counter = field(default_factory=Counter)
    flagged: int = 0
    labels: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in LABEL_COLUMNS})
    think_lengths: Counter = field(default_factory=Counter)  # length → studies (exact lengths: a bounded set)
    corrections: Counter = field(default_factory=Counter)  # kind → corrections; "none" for traces without
    images_per_row: Counter = field(default_factory=Counter)  # (format, n) → rows
    provenance: Counter = field(default_factory=Counter)  # (teacher, model, template_sha, schema_id) → studies
    review: Counter = field(default_factory=Counter)  # decision → studies with one

    def add_record(self, record: Any, labels: dict[str, Any], think_length: int, flagged: bool) -> None:
        """Count one exported study."""
        self.studies[record.split] += 1
        self.datasets[record.dataset] += 1
        self.flagged += int(flagged)
        for col in LABEL_COLUMNS:
            value = labels.get(col)
            self.labels[col]["not mentioned" if value is None else {1: "positive", 0: "negative",
                                                                    -1: "uncertain"}[value]] += 1
        if record.think is not None:
            self.think_lengths[think_length] += 1
        self.corrections.update(record.corrections or ["none"])

    def merge(self, other: Stats) -> None:
        """Add another batch's counts."""
        for name in ("rows", "left_out", "excluded", "studies", "datasets", "think_lengths", "corrections",
                     "images_per_row", "provenance", "review"):
            getattr(self, name).update(getattr(other, name))
        self.flagged += other.flagged
        for col in LABEL_COLUMNS:
            self.labels[col].update(other.labels[col])

    def think_quantiles(self, qs: tuple[float, ...] = (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)) -> dict[float, int]:
        """Quantiles of the think length, read off the counts."""
        total = sum(self.think_lengths.values())
        out: dict[float, int] = {}
        if not total:
            return out
        ordered = sorted(self.think_lengths.items())
        for q in qs:
            rank, seen = q * (total - 1), 0
            for length, n in ordered:
                seen += n
                if seen > rank:
                    out[q] = length
                    break
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain data for the manifest."""
        return {
            "rows": {f"{f}/{s}": n for (f, s), n in sorted(self.rows.items())},
            "left_out": {f"{f}/{c}": n for (f, c), n in sorted(self.left_out.items())},
            "excluded": dict(self.excluded),
            "studies": dict(self.studies),
            "flagged_kept": self.flagged,
            "corrections": dict(self.corrections),
            "review": dict(self.review),
        }


def length_measure(tokenizer: str | None):
    """(unit, function) measuring think text: tokens of the named tokenizer, or words when none is named.

    A tokenizer is a ``tokenizer.json`` file (the ``tokenizers`` package) or a local folder / cached name that
    ``transformers.AutoTokenizer`` loads without the network; one that cannot be loaded is a ConfigError.
    """
    if not tokenizer:
        return "words", lambda text: len(text.split())
    from pathlib import Path

    from datakit.errors import ConfigError

    try:
        if Path(tokenizer).is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(tokenizer)
            return f"tokens ({Path(tokenizer).name})", lambda text: len(tok.encode(text).ids)
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        return f"tokens ({tokenizer})", lambda text: len(hf(text, add_special_tokens=False)["input_ids"])
    except Exception as err:  # noqa: BLE001 - any failure to load means the same thing to the user
        raise ConfigError(f"export.tokenizer {tokenizer!r} cannot be loaded ({err.__class__.__name__}: {err})",
                          hint="name a tokenizer.json file or a local model folder, or unset it to count words") \
            from err
