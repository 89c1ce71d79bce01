"""``datakit eval``: score generated reports against references, NLG and clinical efficacy, conventions named.

Library API: :func:`run` reads the inputs (:mod:`datakit.evaluate.predictions`), computes BLEU-1..4, METEOR,
ROUGE-L and CIDEr (:mod:`~datakit.evaluate.nlg`, :mod:`~datakit.evaluate.meteor`), the clinical-efficacy
P / R / F1 from a labeler (:mod:`~datakit.evaluate.clinical`) and any requested model-based scorers
(:mod:`~datakit.evaluate.plugins`), and returns (and optionally writes) one JSON-ready summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datakit import __version__
from datakit.errors import ConfigError
from datakit.evaluate import clinical, nlg, plugins
from datakit.evaluate import meteor as meteor_mod
from datakit.evaluate.predictions import Pairs, pairs_from_lists, read_pairs
from datakit.rundir import write_atomic

__all__ = ["EvalResult", "Pairs", "pairs_from_lists", "read_pairs", "run", "score"]

EXAMPLES_SHOWN = 20  # unmatched ids and unreadable rows listed in the summary (all are counted)


@dataclass
class EvalResult:
    """What :func:`run` returns: the summary (as written to JSON) and the matched pairs."""

    summary: dict[str, Any]
    pairs: Pairs
    out: Path | None = None


def _nlg(pairs: Pairs, clean: str, use_meteor: bool, each: dict[str, list[float]]) -> dict[str, Any]:
    """The corpus NLG scores; every example's go into ``each`` (metric → one value per pair)."""
    fn, description = nlg.CLEANERS[clean]
    hyps = [fn(h) for h in pairs.hyps]
    refs = [[fn(r)] for r in pairs.refs]
    corpus_bleu, bleu_each = nlg.bleu(hyps, refs)
    out: dict[str, Any] = {f"BLEU_{k + 1}": v for k, v in enumerate(corpus_bleu)}
    each.update({f"BLEU_{k + 1}": v for k, v in enumerate(bleu_each)})
    setup = meteor_mod.locate()
    if not use_meteor:
        out["METEOR"] = None
        meteor_note = {"computed": False, "reason": "turned off (--no-meteor)"}
    elif not setup.available:
        out["METEOR"] = None
        meteor_note = {"computed": False, "reason": setup.reason, "install": meteor_mod.INSTALL_HINT}
    else:
        out["METEOR"], each["METEOR"] = meteor_mod.meteor(hyps, refs, setup)
        meteor_note = {"computed": True, "jar": str(setup.jar), "java": setup.java}
    out["ROUGE_L"], each["ROUGE_L"] = nlg.rouge_l(hyps, refs)
    out["CIDEr"], each["CIDEr"] = nlg.cider(hyps, refs)
    return {
        "scores": out,
        "meteor": meteor_note,
        "normalisation": f"{clean}: {description}",
        "convention": "pycocoevalcap 1.2 scorers on whitespace tokens, no PTB tokenizer (as R2Gen): BLEU with "
        "the 'closest' reference length, ROUGE-L beta 1.2, CIDEr (n=4, sigma=6) with document frequencies over "
        "these references; corpus BLEU and METEOR, mean ROUGE-L and CIDEr",
    }


def _clinical(pairs: Pairs, labels_text: str, labeler: clinical.LabelerLike | None) -> dict[str, Any]:
    if labeler is None:
        from datakit.reading.labeler import default_labeler

        labeler = default_labeler()
    hyp = clinical.label_texts(labeler, [clinical.text_for_labels(t, labels_text) for t in pairs.hyps])
    ref = clinical.label_texts(labeler, [clinical.text_for_labels(t, labels_text) for t in pairs.refs])
    name = type(labeler).__module__ + "." + type(labeler).__qualname__
    fingerprint = getattr(labeler, "fingerprint", None)
    return {
        "labeler": name + (f" ({fingerprint[:12]})" if isinstance(fingerprint, str) else ""),
        "labels_text": labels_text,
        "labels_text_description": "the impression, else the findings, else the whole text"
        if labels_text == "impression"
        else "the whole report",
        "conventions": clinical.clinical_efficacy(hyp, ref),
    }


def _check_options(clean: str, labels_text: str) -> None:
    if clean not in nlg.CLEANERS:
        raise ConfigError(f"unknown normalisation {clean!r}", hint=f"use one of: {', '.join(nlg.CLEANERS)}")
    if labels_text not in clinical.LABELS_TEXT:
        raise ConfigError(f"unknown --labels-text {labels_text!r}",
                          hint=f"use one of: {', '.join(clinical.LABELS_TEXT)}")


def score(
    pairs: Pairs,
    *,
    clean: str = "mimic_cxr",
    labels_text: str = "impression",
    labeler: clinical.LabelerLike | None = None,
    meteor: bool = True,
    scorers: Sequence[str] = (),
    per_example: bool = False,
) -> dict[str, Any]:
    """The summary of matched pairs (see :func:`run`); ``pairs_from_lists`` makes pairs from lists in memory."""
    _check_options(clean, labels_text)
    started = time.perf_counter()
    each: dict[str, list[float]] = {}
    model_based = plugins.run_plugins(scorers, pairs.hyps, pairs.refs)
    summary: dict[str, Any] = {
        "datakit_version": __version__,
        "layout": pairs.layout,
        "counts": {
            "scored": len(pairs.ids),
            "empty_predictions": sum(1 for h in pairs.hyps if not h.strip()),
            "predictions_without_reference": len(pairs.predictions_without_reference),
            "references_without_prediction": len(pairs.references_without_prediction),
            "unreadable_rows": len(pairs.skipped),
        },
        "unmatched": {
            "predictions_without_reference": pairs.predictions_without_reference[:EXAMPLES_SHOWN],
            "references_without_prediction": pairs.references_without_prediction[:EXAMPLES_SHOWN],
        },
        "unreadable_rows": pairs.skipped[:EXAMPLES_SHOWN],
        "generation": pairs.generation,
        "nlg": _nlg(pairs, clean, meteor, each),
        "clinical_efficacy": _clinical(pairs, labels_text, labeler),
        "model_based": model_based,
    }
    if per_example:
        summary["per_example"] = [{"id": sid, **{m: v[i] for m, v in each.items()}} for i, sid in enumerate(pairs.ids)]
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def run(
    predictions: str | Path,
    refs: str | Path | None = None,
    *,
    layout: str = "auto",
    clean: str = "mimic_cxr",
    labels_text: str = "impression",
    labeler: clinical.LabelerLike | None = None,
    meteor: bool = True,
    scorers: Sequence[str] = (),
    per_example: bool = False,
    out: str | Path | None = None,
) -> EvalResult:
    """Score PREDICTIONS against REFS (files in a known layout); write the summary to ``out`` (JSON) when given.

    ``clean``: the normalisation before the NLG metrics (``mimic_cxr``, ``iu_xray``, ``none``); ``labels_text``:
    what the labeler reads (``impression`` or ``report``); ``labeler``: any object with ``label_many`` (default:
    datakit's labeler); ``scorers``: model-based plug-ins to run where installed; ``per_example``: add every
    pair's NLG scores.
    """
    _check_options(clean, labels_text)
    pairs = read_pairs(predictions, refs, layout=layout)
    summary = {
        **pairs.sources,
        **score(pairs, clean=clean, labels_text=labels_text, labeler=labeler, meteor=meteor, scorers=scorers,
                per_example=per_example),
    }
    path = None
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return EvalResult(summary, pairs, path)
