"""Read generated reports and their references into matched pairs, from the layouts eval knows.

- ``datakit``: the predictions JSONL ``datakit predict`` writes (one object a line: ``study_id``, ``think``,
  ``report``, ``generation``), with references from an export split file (``trl``: the reference is the assistant
  text after the think block) or from a run directory's studies table (its findings and impression).
- ``r2gen-csv``: ``res.csv`` and ``gts.csv`` as R2GenCMN's tester writes them (zhjohnchan/R2GenCMN
  ``modules/tester.py``: pandas, no header, no index, one report a row, both in test-loader order). Rows are
  paired by position; the id of a pair is its row number.
- ``coco-json``: ``{id: [report]}`` objects, the dicts the COCO scorers take, as R2GenGPT writes them
  (wang-zhanyu/R2GenGPT ``models/R2GenGPT.py``: ``result/test_result.json`` and ``result/test_refs.json``);
  a plain ``{id: report}`` object is read too.

Pairs are matched by id. A prediction without a reference, a reference without a prediction, and a row that
cannot be read are counted and listed, never dropped silently.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.errors import DatakitError

LAYOUTS = ("auto", "datakit", "r2gen-csv", "coco-json")
_THINK = re.compile(r"<think>.*?</think>|<\|begin_of_thought\|>.*?<\|end_of_thought\|>", re.DOTALL)
_EXPECTED = (
    "expected one of: a predictions JSONL from `datakit predict` (objects with study_id and report); "
    "R2GenCMN's res.csv + gts.csv (a folder holding both, or res.csv with --refs gts.csv); "
    "R2GenGPT's test_result.json + test_refs.json ({id: [report]} objects; a folder holding both, or the "
    "predictions file with --refs)"
)


class EvalInputError(DatakitError):
    """The predictions or references cannot be read as any layout eval knows."""


@dataclass
class Pairs:
    """Generated and reference reports, matched by id, and what could not be matched or read."""

    layout: str
    ids: list[str] = field(default_factory=list)
    hyps: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    predictions_without_reference: list[str] = field(default_factory=list)
    references_without_prediction: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"file", "line", "reason"}
    generation: list[dict[str, Any]] = field(default_factory=list)  # distinct generation settings seen
    sources: dict[str, str] = field(default_factory=dict)  # the files (or run directory) read


def pairs_from_lists(hyps: list[str], refs: list[str], ids: list[str] | None = None) -> Pairs:
    """Pairs from reports in memory (R2Gen's tester keeps ``test_res`` and ``test_gts`` as two lists, in order)."""
    if len(hyps) != len(refs):
        raise EvalInputError(f"{len(hyps)} predictions but {len(refs)} references",
                             hint="pass one reference per prediction, in the same order")
    ids = ids if ids is not None else [str(i) for i in range(len(hyps))]
    if len(ids) != len(hyps) or len(set(ids)) != len(ids):
        raise EvalInputError("ids must be unique, one per prediction", hint="pass one distinct id per prediction")
    return Pairs(layout="lists", ids=list(ids), hyps=list(hyps), refs=list(refs))


def report_after_think(text: str) -> str:
    """The report of an assistant turn: the text after its think block (any tag style), stripped."""
    return _THINK.sub("", text, count=1).strip()


def _jsonl(path: Path, skipped: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                skipped.append({"file": str(path), "line": n, "reason": f"not JSON ({err.msg})"})
                continue
            if not isinstance(obj, dict):
                skipped.append({"file": str(path), "line": n, "reason": "not a JSON object"})
                continue
            rows.append((n, obj))
    return rows


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(texts)
    return None


def _export_reference(obj: dict[str, Any]) -> str | None:
    messages = obj.get("messages")
    if not isinstance(messages, list):
        return None
    answers = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not answers:
        return None
    text = _text_of(answers[-1].get("content"))
    return None if text is None else report_after_think(text)


def _read_predictions(path: Path, skipped: list[dict[str, Any]]) -> tuple[dict[str, str], list[dict]]:
    rows = _jsonl(path, skipped)
    if rows and not any("report" in o and "study_id" in o for _, o in rows):
        raise EvalInputError(f"{path} holds no object with study_id and report", hint=_EXPECTED)
    out: dict[str, str] = {}
    settings: list[dict] = []
    for n, obj in rows:
        sid, report = obj.get("study_id"), obj.get("report")
        if not isinstance(sid, str) or not sid:
            skipped.append({"file": str(path), "line": n, "reason": "no study_id"})
        elif not isinstance(report, str):
            skipped.append({"file": str(path), "line": n, "reason": f"study {sid}: report is not a string"})
        elif sid in out:
            skipped.append({"file": str(path), "line": n, "reason": f"study {sid}: a second prediction (the first "
                            "is scored)"})
        else:
            out[sid] = report
            gen = obj.get("generation")
            if isinstance(gen, dict) and gen not in settings:
                settings.append(gen)
    return out, settings


def _read_export(path: Path, skipped: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, obj in _jsonl(path, skipped):
        sid, ref = obj.get("study_id"), _export_reference(obj)
        if not isinstance(sid, str) or not sid:
            skipped.append({"file": str(path), "line": n, "reason": "no study_id"})
        elif ref is None:
            skipped.append({"file": str(path), "line": n, "reason": f"study {sid}: no assistant message to take "
                            "the reference from"})
        elif sid in out:
            skipped.append({"file": str(path), "line": n, "reason": f"study {sid}: a second reference (the first "
                            "is used)"})
        else:
            out[sid] = ref
    return out


def _read_studies(run_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Each study's reference report, and its split."""
    from datakit.rundir import RunDir

    studies = RunDir.open(run_dir).read_table("studies")
    out = {}
    splits = dict(zip(studies["study_id"].to_list(), studies["split"].to_list(), strict=True))
    for row in studies.select("study_id", "findings", "impression", "report_text").iter_rows(named=True):
        parts = [f"{name.upper()}: {row[name].strip()}" for name in ("findings", "impression")
                 if row[name] and row[name].strip()]
        # the reference as the export renders it; a study without either section keeps its whole report
        out[row["study_id"]] = "\n\n".join(parts) if parts else (row["report_text"] or "").strip()
    return out, splits


def _read_csv(path: Path, skipped: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh)):
            if len(row) > 1:
                skipped.append({"file": str(path), "line": n + 1, "reason": f"{len(row)} columns, not 1"})
                continue
            out[str(n)] = row[0] if row else ""
    return out


def _read_coco(path: Path, skipped: list[dict[str, Any]]) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise EvalInputError(f"{path} is not JSON ({err.msg}, line {err.lineno})", hint=_EXPECTED) from err
    if not isinstance(data, dict):
        raise EvalInputError(f"{path} is a JSON {type(data).__name__}, not an {{id: [report]}} object",
                             hint=_EXPECTED)
    out = {}
    for key, value in data.items():
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            out[str(key)] = value[0]
        elif isinstance(value, str):
            out[str(key)] = value
        else:
            shape = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
            skipped.append({"file": str(path), "line": None, "reason": f"id {key}: {shape}, not one report"})
    return out


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "studies.parquet").is_file()


def _resolve(predictions: Path, refs: Path | None, layout: str) -> tuple[str, Path, Path]:
    """The layout and the two files (or run directory) to read."""
    if layout not in LAYOUTS:
        raise EvalInputError(f"unknown layout {layout!r}", hint=f"use one of: {', '.join(LAYOUTS)}")
    if not predictions.exists():
        raise EvalInputError(f"{predictions} does not exist", hint=_EXPECTED)
    if predictions.is_dir():
        for lay, pred, ref in (("r2gen-csv", "res.csv", "gts.csv"),
                               ("coco-json", "test_result.json", "test_refs.json"),
                               ("coco-json", "result/test_result.json", "result/test_refs.json")):
            if (predictions / pred).is_file() and (refs is not None or (predictions / ref).is_file()):
                return lay, predictions / pred, refs or predictions / ref
        raise EvalInputError(f"{predictions} is a folder without res.csv + gts.csv or test_result.json + "
                             "test_refs.json", hint=_EXPECTED)
    if layout == "auto":
        suffix = predictions.suffix.lower()
        layout = {".jsonl": "datakit", ".csv": "r2gen-csv", ".json": "coco-json"}.get(suffix, "")
        if not layout:
            raise EvalInputError(f"cannot tell the layout of {predictions} from its name", hint=_EXPECTED)
    if refs is None:
        sibling = {"r2gen-csv": "gts.csv", "coco-json": "test_refs.json"}.get(layout)
        if sibling and (predictions.parent / sibling).is_file():
            return layout, predictions, predictions.parent / sibling
        raise EvalInputError(
            f"no references given for {predictions}",
            hint="pass --refs: an export split file (RUN/export/trl/test.jsonl) or a run directory for datakit "
            "predictions, gts.csv for res.csv, test_refs.json for test_result.json",
        )
    if not refs.exists():
        raise EvalInputError(f"{refs} does not exist", hint="pass --refs an existing file or run directory")
    return layout, predictions, refs


def _read(pairs: Pairs, pred_path: Path, ref_path: Path) -> tuple[dict, dict, dict | None]:
    """Predictions and references by id (and each reference's split when they come from a run directory)."""
    if pairs.layout == "datakit":
        hyp, pairs.generation = _read_predictions(pred_path, pairs.skipped)
        if _is_run_dir(ref_path):
            ref, splits = _read_studies(ref_path)
            return hyp, ref, splits
        if ref_path.is_dir():
            raise EvalInputError(f"{ref_path} is a folder without studies.parquet",
                                 hint="pass --refs a run directory or an export split file such as "
                                 "RUN/export/trl/test.jsonl")
        return hyp, _read_export(ref_path, pairs.skipped), None
    if pairs.layout == "r2gen-csv":
        return _read_csv(pred_path, pairs.skipped), _read_csv(ref_path, pairs.skipped), None
    return _read_coco(pred_path, pairs.skipped), _read_coco(ref_path, pairs.skipped), None


def read_pairs(predictions: str | Path, refs: str | Path | None = None, *, layout: str = "auto") -> Pairs:
    """Read predictions and references in a known layout and match them by id (in the predictions' order)."""
    layout, pred_path, ref_path = _resolve(Path(predictions), Path(refs) if refs is not None else None, layout)
    pairs = Pairs(layout=layout, sources={"predictions": str(pred_path), "references": str(ref_path)})
    try:
        hyp, ref, splits = _read(pairs, pred_path, ref_path)
    except UnicodeDecodeError as err:
        raise EvalInputError(
            f"{pred_path} or {ref_path} is not UTF-8 text ({err.reason} at byte {err.start})",
            hint="give the files as datakit predict, the export or the R2Gen code wrote them (UTF-8)",
        ) from err
    for sid, text in hyp.items():
        if sid in ref:
            pairs.ids.append(sid)
            pairs.hyps.append(text)
            pairs.refs.append(ref[sid])
        else:
            pairs.predictions_without_reference.append(sid)
    # a run directory holds every split: only the splits the predictions cover can miss a prediction
    covered = {splits[sid] for sid in pairs.ids} if splits is not None else None
    pairs.references_without_prediction = [
        sid for sid in ref if sid not in hyp and (covered is None or splits[sid] in covered)  # type: ignore[index]
    ]
    if not pairs.ids:
        raise EvalInputError(
            f"no prediction in {pred_path} has a reference in {ref_path} "
            f"({len(hyp)} predictions, {len(ref)} references, {len(pairs.skipped)} rows unreadable)",
            hint="check that both come from the same split and use the same study ids; " + _EXPECTED,
        )
    return pairs
