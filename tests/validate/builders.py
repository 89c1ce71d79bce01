"""Small run tables and traces for validation tests, written by hand: one good trace, then ways to spoil
it."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import polars as pl

from datakit import tables
from datakit.rundir import RunDir
from datakit.trace import SCHEMA_ID, dumps


def item(
    region: str,
    finding: str,
    status: str,
    evidence: str,
    laterality: str = "none",
    severity: str | None = None,
) -> dict[str, Any]:
    return {
        "region": region,
        "finding": finding,
        "status": status,
        "laterality": laterality,
        "severity": severity,
        "evidence": evidence,
    }


def state(status: str, laterality: str = "none", severity: str | None = None) -> dict[str, Any]:
    return {"status": status, "laterality": laterality, "severity": severity}


NORMALS = {
    "airway": "The trachea is midline and the central airways are patent.",
    "lungs": "The lungs are well expanded and clear, without focal opacity.",
    "pleura": "The costophrenic angles are sharp; there is no pleural line.",
    "heart_mediastinum": "The cardiomediastinal silhouette is within normal limits.",
    "hila": "Both hila are of normal size and density.",
    "bones_soft_tissue": "The ribs, clavicles and spine are intact.",
    "upper_abdomen": "No free air under the hemidiaphragms.",
    "lines_devices": "No tubes, lines or devices are seen.",
}


def effusion_trace(study: str = "s1") -> dict[str, Any]:
    """A good trace of a study with a small left pleural effusion and a normal heart (labels of
    :func:`study`)."""
    perception = [item(r, "normal", "present", e) for r, e in NORMALS.items() if r not in ("pleura",)]
    perception.insert(
        2,
        item(
            "pleura",
            "pleural_effusion",
            "present",
            "Blunting of the left costophrenic angle with a meniscus, in keeping with a small "
            "left pleural effusion.",
            "left",
            "small",
        ),
    )
    perception.insert(4, item("heart_mediastinum", "cardiomegaly", "absent", "The heart is not enlarged."))
    return {
        "perception": perception,
        "reasoning": [
            {
                "observation": "Blunted left costophrenic angle with a meniscus",
                "inference": "Fluid in the dependent pleural space blunts the angle, the typical sign of a "
                "pleural "
                "effusion [K:pleural_effusion].",
                "knowledge": ["pleural_effusion"],
                "conclusion": "pleural_effusion",
                "status": "present",
            },
            {
                "observation": "Cardiac silhouette under half the thoracic width",
                "inference": "A normal cardiothoracic ratio excludes cardiomegaly [K:cardiomegaly].",
                "knowledge": ["cardiomegaly"],
                "conclusion": "cardiomegaly",
                "status": "absent",
            },
        ],
        "reflection": {
            "checked": [
                "the costophrenic angles for fluid on both sides",
                "the cardiac size on the frontal view",
            ],
            "corrections": [],
            "summary": "The second look confirms the first reading; nothing needs correcting.",
        },
        "report": {
            "findings": "There is a small left pleural effusion. The heart size is normal.",
            "impression": "Small left pleural effusion.",
        },
    }


def normal_trace(variant: int = 0) -> dict[str, Any]:
    """A good trace of a normal study; ``variant`` changes its wording (for diversity tests)."""
    words = ["clear", "well aerated", "free of opacity", "expanded and clear", "without consolidation"]
    sides = ["both sides", "each side", "left and right", "the two sides", "both hemithoraces"]
    w = words[variant % len(words)]
    perception = [item(r, "normal", "present", e) for r, e in NORMALS.items()]
    perception[1] = item("lungs", "normal", "present", f"The lungs are {w} on {sides[(variant // 5) % 5]}.")
    return {
        "perception": perception,
        "reasoning": [
            {
                "observation": "Every region of the tree looks normal",
                "inference": "There is no acute cardiopulmonary abnormality [K:no_finding].",
                "knowledge": ["no_finding"],
                "conclusion": "no_finding",
                "status": "present",
            }
        ],
        "reflection": {
            "checked": ["the lung apices and bases", "the costophrenic angles"],
            "corrections": [],
            "summary": "On re-inspection every claim holds.",
        },
        "report": {
            "findings": "The lungs are clear. The heart size is normal. No pleural effusion.",
            "impression": "No acute cardiopulmonary process.",
        },
    }


def labels(**values: int | None) -> dict[str, int | None]:
    out: dict[str, int | None] = {c: None for c in tables.LABEL_COLUMNS}
    out.update(values)
    return out


EFFUSION_LABELS = labels(pleural_effusion=1, cardiomegaly=0)
NORMAL_LABELS = labels(no_finding=1)


def study_row(
    study_id: str,
    lab: dict[str, int | None],
    trace: dict[str, Any],
    *,
    n_images: int = 2,
    dataset: str = "mimic-cxr",
    label_source: str = "chexpert",
) -> dict[str, Any]:
    rep = trace["report"]
    return {
        "study_id": study_id,
        "subject_id": f"p{study_id}",
        "dataset": dataset,
        "source_format": "mimic-cxr",
        "split": "train",
        "split_source": "official",
        "indication": None,
        "comparison": None,
        "findings": rep["findings"],
        "impression": rep["impression"],
        "last_paragraph": None,
        "extracted_section": "impression",
        "extracted_text": rep["impression"],
        "report_text": f"FINDINGS: {rep['findings']}\nIMPRESSION: {rep['impression']}",
        "report_path": None,
        "n_images": n_images,
        **lab,
        "label_source": label_source,
    }


def trace_row(
    study_id: str,
    trace: dict[str, Any] | str,
    *,
    n_images: int = 2,
    schema_id: str = SCHEMA_ID,
    teacher: str = "test",
) -> dict[str, Any]:
    text = trace if isinstance(trace, str) else dumps(trace)
    cited = []
    if isinstance(trace, dict):
        cited = list(dict.fromkeys(k for s in trace.get("reasoning", []) for k in s.get("knowledge", [])))
    return {
        "study_id": study_id,
        "trace_json": text,
        "schema_id": schema_id,
        "teacher": teacher,
        "model": None,
        "templates": None,
        "template_sha": None,
        "knowledge_ids": cited,
        "injected_error": None,
        "n_images": n_images,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "cache_keys": [],
    }


def frame(rows: list[dict[str, Any]], schema: Any) -> pl.DataFrame:
    dtypes = {name: col.dtype.type for name, col in schema.columns.items()}
    return pl.DataFrame(rows, schema=dtypes, orient="row") if rows else pl.DataFrame(schema=dtypes)


class Corpus:
    """Studies, images, knowledge hits and traces built up case by case."""

    def __init__(self) -> None:
        self.studies: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []
        self.hits: list[dict[str, Any]] = []
        self.traces: list[dict[str, Any]] = []

    def add(
        self,
        study_id: str,
        trace: dict[str, Any] | str,
        lab: dict[str, int | None],
        *,
        n_images: int = 2,
        trace_images: int | None = None,
        hits: tuple[str, ...] | None = None,
        report: dict | None = None,
        label_source: str = "chexpert",
        in_studies: bool = True,
    ) -> None:
        if report is not None and isinstance(trace, dict):
            trace = {**trace, "report": report}
        base = (
            trace if isinstance(trace, dict) else {"report": report or {"findings": "x", "impression": "y"}}
        )
        if in_studies:
            self.studies.append(study_row(study_id, lab, base, n_images=n_images, label_source=label_source))
        for i in range(n_images if in_studies else 0):
            self.images.append(
                {
                    "image_id": f"{study_id}-{i}",
                    "study_id": study_id,
                    "subject_id": f"p{study_id}",
                    "dataset": "mimic-cxr",
                    "source_path": f"files/{study_id}/{i}.dcm",
                    "view": "PA" if i == 0 else "LATERAL",
                    "view_raw": None,
                    "source_width": None,
                    "source_height": None,
                    "source_digest": None,
                    "convert_key": None,
                    "converted_path": None,
                    "width": None,
                    "height": None,
                }
            )
        if hits is None:
            hits = tuple(k for c, v in lab.items() if v in (1, -1) for k in [c])
        for rank, entry in enumerate(hits, start=1):
            self.hits.append(
                {"study_id": study_id, "rank": rank, "entry_id": entry, "score": 1.0, "reason": "bm25"}
            )
        self.traces.append(
            trace_row(study_id, trace, n_images=n_images if trace_images is None else trace_images)
        )

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "traces": frame(self.traces, tables.Traces),
            "studies": frame(self.studies, tables.Studies),
            "images": frame(self.images, tables.Images),
            "hits": frame(self.hits, tables.KnowledgeHits),
        }

    def write(self, root: Path) -> RunDir:
        run = RunDir.create(root)
        t = self.tables()
        run.write_table("studies", t["studies"])
        run.write_table("images", t["images"])
        run.write_table("knowledge", t["hits"])
        run.write_table("traces", t["traces"])
        return run


def spoil(trace: dict[str, Any], fn) -> dict[str, Any]:
    """A deep copy of ``trace`` changed by ``fn`` (which edits it in place)."""
    out = copy.deepcopy(trace)
    fn(out)
    return out


# --- a fake labeler: a few CheXpert observations by keyword, with negation and hedging
# -------------------------
_TERMS = {
    "pleural_effusion": r"effusion",
    "cardiomegaly": r"cardiomegaly|heart (?:is |size is )?(?:mildly |moderately )?enlarged",
    "pneumothorax": r"pneumothorax",
    "edema": r"edema",
    "consolidation": r"consolidation",
    "atelectasis": r"atelectasis",
    "support_devices": r"tube|catheter|pacemaker|line",
    "fracture": r"fracture",
    "lung_opacity": r"opacit",
}


class KeywordLabeler:
    """Labels a few observations per sentence: 'no …' → 0, 'possible …' → -1, else 1."""

    def __init__(self) -> None:
        self.calls = 0

    def label(self, text: str) -> dict[str, int | None]:
        out: dict[str, int | None] = {c: None for c in tables.LABEL_COLUMNS}
        for sentence in re.split(r"(?<=[.!?])\s+", text or ""):
            low = sentence.lower()
            for col, rx in _TERMS.items():
                if re.search(rx, low):
                    if re.search(r"\b(no|without|not)\b", low):
                        value = 0
                    elif re.search(r"\b(possible|may|cannot be excluded|questioned)\b", low):
                        value = -1
                    else:
                        value = 1
                    prev = out[col]
                    out[col] = (
                        value
                        if prev is None
                        else (1 if 1 in (prev, value) else -1 if -1 in (prev, value) else 0)
                    )
        if not any(
            out[c] in (1, -1) for c in tables.LABEL_COLUMNS if c not in ("no_finding", "support_devices")
        ):
            out["no_finding"] = 1
        return out

    def label_many(self, texts: list[str], workers: int | None = None) -> pl.DataFrame:
        self.calls += 1
        rows = [self.label(t) for t in texts]
        return pl.DataFrame(rows, schema={c: pl.Int8 for c in tables.LABEL_COLUMNS}, orient="row")
