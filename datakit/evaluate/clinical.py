"""Clinical efficacy: precision, recall and F1 of the CheXpert labels of generated against reference reports.

Both reports are labelled by the same labeler (an injected dependency: anything with ``label_many(texts)``
returning the 14 label columns, 1 / 0 / -1 / null). The labels are made binary under a named convention, then
scored per label and averaged micro and macro, over the 14 labels and over the 5 of the "chexbert-5" subset:

- ``positive_only`` (zhjohnchan/R2Gen ``compute_ce.py``: blank → 0 and -1 → 0, then sklearn micro / macro);
- ``uncertain_as_positive`` (``f1chexbert`` ``get_label(mode="rrg")``: positive and uncertain → 1).

Numbers under different conventions, label sets or averages are not comparable; the output names each. A
division by zero (no predicted or no true positives) gives 0, as scikit-learn's default does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl

from datakit.tables import LABEL_COLUMNS, LABELS, LABELS_5


class LabelerLike(Protocol):
    """What clinical efficacy needs of a labeler."""

    def label_many(self, texts: Sequence[str | None]) -> pl.DataFrame:  # noqa: D102
        ...


@dataclass(frozen=True)
class Convention:
    """How a 1 / 0 / -1 / blank label becomes binary."""

    name: str
    positive: frozenset[int]
    description: str


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "positive_only",
            frozenset({1}),
            "positive-only (R2Gen compute_ce.py): 1 → 1; 0, -1 (uncertain) and blank → 0",
        ),
        Convention(
            "uncertain_as_positive",
            frozenset({1, -1}),
            "uncertain-as-positive (F1CheXbert, mode 'rrg'): 1 and -1 (uncertain) → 1; 0 and blank → 0",
        ),
    )
}
LABEL_SETS: dict[str, list[str]] = {"14": LABEL_COLUMNS, "5": LABELS_5}
_BLANK = -2


def label_codes(frame: pl.DataFrame) -> np.ndarray:
    """The 14 label columns of a labeler's output as an int array, blank (null) as -2."""
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the labeler's output lacks the label columns {missing}")
    return frame.select(pl.col(c).cast(pl.Int8).fill_null(_BLANK) for c in LABEL_COLUMNS).to_numpy().astype(int)


def binarise(codes: np.ndarray, convention: Convention) -> np.ndarray:
    """Binary label matrix (bool, same shape) of label codes under a convention."""
    return np.isin(codes, list(convention.positive))


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return p, r, _ratio(2 * p * r, p + r)


def scores(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Micro and macro P / R / F1, and each label's P / R / F1 and support, of binary matrices (rows × labels)."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    per_label = {}
    for i, name in enumerate(names):
        p, r, f = _prf(tp[i], fp[i], fn[i])
        per_label[name] = {"precision": p, "recall": r, "f1": f, "support": int(tp[i] + fn[i]),
                           "predicted": int(tp[i] + fp[i])}
    p, r, f = _prf(tp.sum(), fp.sum(), fn.sum())
    rows = list(per_label.values())
    k = len(rows) or 1
    macro = {m: sum(row[m] for row in rows) / k for m in ("precision", "recall", "f1")}
    return {"micro": {"precision": p, "recall": r, "f1": f}, "macro": macro, "per_label": per_label}


def example_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of examples whose binary labels all agree (F1CheXbert's ``accuracy``, on the 5 labels)."""
    if len(y_true) == 0:
        return 0.0
    return float(np.mean(np.all(np.asarray(y_true, bool) == np.asarray(y_pred, bool), axis=1)))


def clinical_efficacy(hyp_codes: np.ndarray, ref_codes: np.ndarray) -> dict[str, Any]:
    """Every convention × label set: micro, macro, per label; plus the 5-label example accuracy."""
    out: dict[str, Any] = {}
    index = {c: i for i, c in enumerate(LABEL_COLUMNS)}
    for conv in CONVENTIONS.values():
        hyp, ref = binarise(hyp_codes, conv), binarise(ref_codes, conv)
        block: dict[str, Any] = {"description": conv.description}
        for set_name, cols in LABEL_SETS.items():
            idx = [index[c] for c in cols]
            result = scores(ref[:, idx], hyp[:, idx], [LABELS[c] for c in cols])
            if set_name == "5":
                result["example_accuracy"] = example_accuracy(ref[:, idx], hyp[:, idx])
            block[f"labels_{set_name}"] = result
        out[conv.name] = block
    return out


def label_texts(labeler: LabelerLike, texts: Sequence[str | None]) -> np.ndarray:
    """Label codes (n × 14, blank -2) of texts by the injected labeler."""
    return label_codes(labeler.label_many(list(texts)))


LABELS_TEXT = ("impression", "report")
# the section headers of a report as datakit renders it ("FINDINGS: …\n\nIMPRESSION: …"), at a line start
_SECTION = re.compile(r"^[ \t]*(findings|impression)[ \t]*:", re.IGNORECASE | re.MULTILINE)


def sections(report: str) -> dict[str, str]:
    """The FINDINGS and IMPRESSION sections of a report (the last of each name), stripped; absent ones left out."""
    found: dict[str, str] = {}
    heads = list(_SECTION.finditer(report))
    for head, nxt in zip(heads, [*heads[1:], None], strict=False):
        body = report[head.end() : nxt.start() if nxt else len(report)].strip()
        if body:
            found[head.group(1).lower()] = body
    return found


def text_for_labels(report: str, mode: str = "impression") -> str:
    """The part of a report the labeler reads: ``impression`` (else findings, as CheXpert does) or ``report``.

    A report without FINDINGS / IMPRESSION headers (R2Gen's cleaned text, say) is read whole.
    """
    if mode == "report":
        return report
    found = sections(report)
    return found.get("impression") or found.get("findings") or report
