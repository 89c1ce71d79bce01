"""Model-based scorers (CheXbert, RadGraph, GREEN, RaTEScore) as optional plug-ins, keyed by name.

Each is imported only when its package is installed (found with ``importlib.util.find_spec``) and the user asks
for it: they fetch model weights on first use and some need a GPU, so datakit never installs or runs them by
itself and the tests never load them. Each adapter returns a flat ``{metric: number}`` dict. Their calls follow
the packages' own READMEs (f1chexbert 0.0.2, radgraph 0.1.x, green-score, RaTEScore) and are not exercised by
datakit's tests; :func:`register` adds a scorer of your own in the same slot.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from datakit.registry import Registry

Scorer = Callable[[Sequence[str], Sequence[str]], dict[str, float]]


@dataclass(frozen=True)
class Plugin:
    """A scorer that lives in another package."""

    name: str
    module: str  # the import name its availability is judged by
    install: str  # what to run to get it
    score: Scorer  # (hyps, refs) → {metric: value}
    description: str


def _mean(values: Sequence[float]) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0


def _chexbert(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    from f1chexbert import F1CheXbert

    accuracy, _, report_14, report_5 = F1CheXbert()(hyps=list(hyps), refs=list(refs))
    return {
        "chexbert_5_example_accuracy": float(accuracy),
        "chexbert_14_micro_f1": float(report_14["micro avg"]["f1-score"]),
        "chexbert_14_macro_f1": float(report_14["macro avg"]["f1-score"]),
        "chexbert_5_micro_f1": float(report_5["micro avg"]["f1-score"]),
        "chexbert_5_macro_f1": float(report_5["macro avg"]["f1-score"]),
    }


def _radgraph(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    from radgraph import F1RadGraph

    mean_reward, *_ = F1RadGraph(reward_level="partial")(hyps=list(hyps), refs=list(refs))
    return {"radgraph_partial_f1": float(mean_reward)}


def _green(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    import tempfile

    from green_score import GREEN

    with tempfile.TemporaryDirectory() as out:
        mean, *_ = GREEN("StanfordAIMI/GREEN-radllama2-7b", output_dir=out)(list(refs), list(hyps))
    return {"green": float(mean)}


def _ratescore(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    from RaTEScore import RaTEScore

    return {"ratescore": _mean(RaTEScore().compute_score(list(hyps), list(refs)))}


SCORERS: Registry[Plugin] = Registry("model-based scorer")
for _plugin in (
    Plugin("chexbert", "f1chexbert", "pip install f1chexbert", _chexbert,
           "F1CheXbert: CheXbert labels, uncertain-as-positive, micro/macro F1 over 14 and 5 labels"),
    Plugin("radgraph", "radgraph", "pip install radgraph", _radgraph,
           "RadGraph F1, reward level 'partial' (entities and relation flags)"),
    Plugin("green", "green_score", "pip install green-score", _green,
           "GREEN: an LLM judge of clinically significant errors (a 7B model; needs a GPU)"),
    Plugin("ratescore", "RaTEScore", "pip install RaTEScore", _ratescore,
           "RaTEScore: entity-aware similarity (medical NER and entity embeddings)"),
):
    SCORERS.add(_plugin.name, _plugin)


def register(plugin: Plugin) -> Plugin:
    """Add (or replace) a scorer in the registry."""
    return SCORERS.add(plugin.name, plugin)


def installed(name: str) -> bool:
    """Whether a plug-in's package can be imported here (without importing it)."""
    return importlib.util.find_spec(SCORERS.get(name).module) is not None


def run_plugins(names: Sequence[str], hyps: Sequence[str], refs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Every registered plug-in's status; the requested, installed ones with their scores."""
    for name in names:
        SCORERS.get(name)  # an unknown name is an error listing the known ones
    out: dict[str, dict[str, Any]] = {}
    for name, plugin in SCORERS.items():
        entry: dict[str, Any] = {"description": plugin.description}
        if not installed(name):
            entry.update(status="not installed", note=f"{plugin.module} is not installed: {plugin.install}")
        elif name not in names:
            entry.update(status="installed, not requested", note=f"add --scorer {name} to run it")
        else:
            entry.update(status="computed", scores=plugin.score(hyps, refs))
        out[name] = entry
    return out
