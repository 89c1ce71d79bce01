"""Import Open Imaging Finding Models (``*.fm.json``, MIT) as user knowledge entries (openimagingdata/findingmodels).

Each model becomes ``<into>/findings/fm_<name>.yaml``. Kept: the oifm_id, the name, the description (as the
definition), the synonyms, the model's own index codes (RadLex, SNOMED, GAMUTS, RadElement), the contributors,
and the MIT notice (the licence file is copied next to the entries). Models carry no radiographic signs,
differentials or pitfalls; those lists stay empty.

Ids get the prefix ``fm_`` so an import never silently replaces a shipped entry (the user wins on equal ids):
to replace one, rename the file's id to the shipped id on purpose.

Region and CheXpert label are filled only where they can be told:
1. the model's name is exactly a term of a shipped entry ("pneumothorax", "costophrenic angle blunting"): that
   entry's region, label and laterality;
2. else the model's tags (pleura, lung, mediastinum, osseous, device, …) and words of its name give the
   region, and words of its name give the label (a device model counts as Support Devices);
3. else null.

A malformed file is reported (file and reason) and skipped; the rest are imported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datakit.errors import KnowledgeError
from datakit.knowledge.bm25 import tokenize_terms
from datakit.knowledge.entries import ENTRY_SCHEMA, KnowledgeBase
from datakit.knowledge.kb import _schema_problems, load_kb, user_home_dir
from datakit.rundir import write_atomic

FORMAT = "open-imaging-finding-model"
REPOSITORY = "https://github.com/openimagingdata/findingmodels"
DEFAULT_NOTICE = "MIT License, Copyright (c) 2025 Open Imaging Data Model Initiative"
LICENSE_COPY = "LICENSE-findingmodels"

# tag → region, in priority order (a model tagged both pleura and lung is a pleural finding)
_TAG_REGIONS = [
    ({"device"}, "lines_devices"),
    ({"pleura"}, "pleura"),
    ({"trachea", "airway", "airways", "bronchi", "larynx"}, "airway"),
    ({"hilar", "hilar region", "lymph node"}, "hila"),
    ({"mediastinum", "cardiac", "vascular"}, "heart_mediastinum"),
    ({"diaphragm", "abdomen"}, "upper_abdomen"),
    (
        {"osseous", "bone", "spine", "chest wall", "soft tissue", "musculoskeletal", "paraspinal"},
        "bones_soft_tissue",
    ),
    ({"lung", "interstitial", "interstitial process"}, "lungs"),
]
_NAME_REGIONS = [
    (r"pleura|pneumothora|effusion|costophrenic", "pleura"),
    (r"trache|bronch|carina|laryn", "airway"),
    (r"hil(ar|um)", "hila"),
    (r"heart|cardi|aort|mediastin|pericard|thym", "heart_mediastinum"),
    (r"diaphragm|abdom|bowel|stomach|gastric|subphrenic|pneumoperitoneum|biliar", "upper_abdomen"),
    (
        r"\brib|vertebr|spin|clavic|scapul|stern|humer|osse|bone|shoulder|osteo|subcutaneous|chest wall",
        "bones_soft_tissue",
    ),
    (r"lung|pulmonary|nodul|opacit|consolidat|atelecta|airspace|air space|emphysem|cavit", "lungs"),
]
_NAME_LABELS = [
    (r"pneumothora", "pneumothorax"),
    (r"pleural effusion|hydrothorax", "pleural_effusion"),
    (r"pleural (thicken|plaque|calcif|nodul)", "pleural_other"),
    (r"atelecta|collapse", "atelectasis"),
    (r"consolidat", "consolidation"),
    (r"pneumonia", "pneumonia"),
    (r"edema", "edema"),
    (r"cardiomegaly|cardiac enlargement|enlarged heart", "cardiomegaly"),
    (
        r"(wide|widened|widening).*(mediastin|cardiomediastinal)|mediastinal widening",
        "enlarged_cardiomediastinum",
    ),
    (r"fracture", "fracture"),
]
_NOT_DEVICES = re.compile(r"clip|marker|foreign body|artifact|suture|staple")


@dataclass
class Skipped:
    """A file that was not imported, and why."""

    path: str
    reason: str


@dataclass
class ImportResult:
    """What an import wrote and what it set aside."""

    into: Path
    found: int
    written: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    regions: dict[str, int] = field(default_factory=dict)  # region (or "none") → entries
    labels: dict[str, int] = field(default_factory=dict)  # CheXpert column (or "none") → entries
    license_copied: bool = False


def slug(name: str) -> str:
    """snake_case id part of a model name."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", name.lower())).strip("_") or "unnamed"


def _check(doc: Any) -> str | None:
    """Why ``doc`` is not a usable finding model, or None."""
    if not isinstance(doc, dict):
        return f"the top level should be a JSON object, got {type(doc).__name__}"
    for key in ("oifm_id", "name", "description"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            return f"{key!r} is missing or not a non-empty string"
    for key in ("synonyms", "tags", "contributors", "attributes", "index_codes"):
        if key in doc and doc[key] is not None and not isinstance(doc[key], list):
            return f"{key!r} should be a list, got {type(doc[key]).__name__}"
    if any(not isinstance(s, str) for s in doc.get("synonyms") or []):
        return "'synonyms' should hold only strings"
    for code in doc.get("index_codes") or []:
        if not isinstance(code, dict) or not code.get("system") or not code.get("code"):
            return "an index code lacks 'system' or 'code'"
    return None


def _shipped_terms(kb: KnowledgeBase) -> dict[tuple[str, ...], Any]:
    terms: dict[tuple[str, ...], Any] = {}
    for entry in sorted(kb.entries.values(), key=lambda e: (e.chexpert is None, e.id)):
        for term in entry.terms:
            terms.setdefault(tuple(tokenize_terms(term)), entry)
    return terms


def _region_and_label(doc: dict, terms: dict) -> tuple[str | None, str | None, bool | None]:
    name = doc["name"].lower()
    match = terms.get(tuple(tokenize_terms(name)))
    if match is not None and match.region is not None:
        return match.region, match.chexpert, match.laterality
    tags = {str(t).lower() for t in doc.get("tags") or []}
    region = next((r for keys, r in _TAG_REGIONS if tags & keys), None)
    if region is None or region == "lungs":  # name words refine the broad "lung" tag
        region = next((r for pat, r in _NAME_REGIONS if re.search(pat, name)), region)
    label = next((c for pat, c in _NAME_LABELS if re.search(pat, name)), None)
    if label is None and region == "lines_devices" and not _NOT_DEVICES.search(name):
        label = "support_devices"
    if label is None and region == "lungs" and re.search(r"nodul|mass", name):
        label = "lung_lesion"
    if label is None and region == "lungs" and re.search(r"opacit", name):
        label = "lung_opacity"
    return region, label, None


def _attribute_values(doc: dict, pattern: str) -> list[str]:
    values: list[str] = []
    for attr in doc.get("attributes") or []:
        if isinstance(attr, dict) and re.search(pattern, str(attr.get("name", "")).lower()):
            values += [
                str(v["name"]) for v in attr.get("values") or [] if isinstance(v, dict) and v.get("name")
            ]
    return list(dict.fromkeys(values))


def convert(doc: dict, source: Path, *, terms: dict, notice: str) -> dict:
    """One finding model → one entry (a dict in the knowledge_entry.v1 shape)."""
    region, label, laterality = _region_and_label(doc, terms)
    sides = _attribute_values(doc, r"side|laterality")
    if laterality is None:
        laterality = bool(sides) or region in ("lungs", "pleura", "hila", "bones_soft_tissue")
    codes = [
        {k: c[k] for k in ("system", "code", "display") if c.get(k) is not None}
        for c in doc.get("index_codes") or []
    ]
    radlex = next((c["code"] for c in codes if c["system"].upper() == "RADLEX"), None)
    contributors = [
        {k: str(c[k]) for k in ("name", "code", "url") if c.get(k)}
        for c in doc.get("contributors") or []
        if isinstance(c, dict)
    ]
    who = ", ".join(c["name"] for c in contributors if c.get("name")) or "unknown contributors"
    return {
        "id": f"fm_{slug(doc['name'])}",
        "name": doc["name"],
        "region": region,
        "chexpert": label,
        "synonyms": [s for s in dict.fromkeys(s.strip() for s in doc.get("synonyms") or []) if s],
        "definition": doc["description"].strip(),
        "signs": [],
        "differential": [],
        "pitfalls": [],
        "radlex": radlex if radlex and re.fullmatch(r"RID\d+", radlex) else None,
        "laterality": laterality,
        "severity_terms": _attribute_values(doc, r"severity|size|extent|degree"),
        "index_codes": codes,
        "sources": [
            {
                "title": f"Open Imaging Finding Model {doc['oifm_id']} ({doc['name']}), by {who}",
                "url": REPOSITORY,
            }
        ],
        "license": f"{notice} (see {LICENSE_COPY} in this folder)",
        "provenance": {
            "format": FORMAT,
            "oifm_id": doc["oifm_id"],
            "file": source.name,
            "tags": [str(t) for t in doc.get("tags") or []],
            "contributors": contributors,
            "license_notice": notice,
        },
    }


def _license_of(source_dir: Path) -> tuple[str | None, str]:
    """The licence text beside the models (if any) and its copyright line."""
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md", LICENSE_COPY):
        path = source_dir / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            line = next(
                (ln.strip() for ln in text.splitlines() if ln.strip().lower().startswith("copyright")), None
            )
            kind = "MIT License" if "MIT" in text.splitlines()[0] else text.splitlines()[0].strip()
            return text, f"{kind}, {line}" if line else kind
    return None, DEFAULT_NOTICE


def import_finding_models(source: str | Path, into: str | Path | None = None) -> ImportResult:
    """Import one ``*.fm.json`` file or every one in a folder into a user knowledge folder."""
    source = Path(source).expanduser()
    if source.is_dir():
        files = sorted(source.glob("*.fm.json"))
        source_dir = source
    elif source.is_file():
        files, source_dir = [source], source.parent
    else:
        raise KnowledgeError(f"{source} does not exist", hint="give a *.fm.json file or a folder of them")
    if not files:
        raise KnowledgeError(
            f"{source} holds no *.fm.json files",
            hint="point at the findingmodels repository's defs/ folder or a copy of it",
        )
    into = Path(into).expanduser() if into else user_home_dir()
    findings = into / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    license_text, notice = _license_of(source_dir)
    terms = _shipped_terms(load_kb())
    result = ImportResult(into=into, found=len(files))
    seen: dict[str, str] = {}
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            result.skipped.append(Skipped(str(path), f"not valid JSON: {err}"))
            continue
        problem = _check(doc)
        if problem:
            result.skipped.append(Skipped(str(path), problem))
            continue
        entry = convert(doc, path, terms=terms, notice=notice)
        target = findings / f"{entry['id']}.yaml"
        if entry["id"] in seen:
            result.skipped.append(
                Skipped(str(path), f"id {entry['id']!r} was already imported from {seen[entry['id']]}")
            )
            continue
        if target.is_file() and not _same_model(target, doc["oifm_id"]):
            result.skipped.append(
                Skipped(
                    str(path),
                    f"{target} exists and is not an import of {doc['oifm_id']}; "
                    "move it away to import this model",
                )
            )
            continue
        found = _schema_problems(entry, target, ENTRY_SCHEMA)
        if found:
            result.skipped.append(Skipped(str(path), f"converted entry is not valid: {found[0]}"))
            continue
        write_atomic(target, yaml.safe_dump(entry, sort_keys=False, allow_unicode=True, width=110))
        seen[entry["id"]] = path.name
        result.written.append(target)
        key_r, key_l = entry["region"] or "none", entry["chexpert"] or "none"
        result.regions[key_r] = result.regions.get(key_r, 0) + 1
        result.labels[key_l] = result.labels.get(key_l, 0) + 1
    if result.written:
        text = (
            license_text or f"{notice}\n\nThe entries imported from {REPOSITORY} are under the MIT License.\n"
        )
        write_atomic(into / LICENSE_COPY, text)
        result.license_copied = license_text is not None
    return result


def _same_model(path: Path, oifm_id: str) -> bool:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError):
        return False
    return isinstance(doc, dict) and (doc.get("provenance") or {}).get("oifm_id") == oifm_id
