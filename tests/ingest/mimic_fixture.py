"""Build small MIMIC-CXR(-JPG)-shaped trees for tests: real layout, real CSV columns, tiny real images."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

LABEL_NAMES = [
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
]
META_COLUMNS = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]


def report(findings: str | None = "The lungs are clear.", impression: str | None = "No acute process.") -> str:
    lines = ["                                 FINAL REPORT", " EXAMINATION:  CHEST (PA AND LAT)", " ",
             " INDICATION:  ___M with cough.", " "]
    if findings is not None:
        lines += [f" FINDINGS:  {findings}", " "]
    if impression is not None:
        lines += [f" IMPRESSION:  {impression}", " "]
    return "\n".join(lines) + "\n"


def dicom_id(n: int) -> str:
    h = f"{n:040x}"
    return "-".join(h[i : i + 8] for i in range(0, 40, 8))


@dataclass
class Study:
    subject: str
    study: str
    text: str | bytes | None = field(default_factory=report)  # None: no report file
    views: list[str] = field(default_factory=lambda: ["PA", "LATERAL"])
    split: str = "train"
    labels: dict[str, str] = field(default_factory=dict)  # label name → "1.0" | "0.0" | "-1.0" | ""


def make_tree(root: Path, studies: list[Study], *, ext: str = "jpg", gz: bool = True) -> dict[str, list[str]]:
    """Write the tree; returns {study: [dicom ids]}."""
    meta, split, labels = [], [], []
    ids: dict[str, list[str]] = {}
    n = 0
    for st in studies:
        pdir = root / "files" / f"p{st.subject[:2]}" / f"p{st.subject}"
        sdir = pdir / f"s{st.study}"
        sdir.mkdir(parents=True, exist_ok=True)
        if isinstance(st.text, bytes):
            (pdir / f"s{st.study}.txt").write_bytes(st.text)
        elif st.text is not None:
            (pdir / f"s{st.study}.txt").write_text(st.text)
        for view in st.views:
            n += 1
            did = dicom_id(n)
            ids.setdefault(st.study, []).append(did)
            buf = io.BytesIO()
            Image.new("L", (40, 32), color=100 + n % 50).save(buf, format="PNG" if ext == "png" else "JPEG")
            (sdir / f"{did}.{ext}").write_bytes(buf.getvalue())
            meta.append([did, st.subject, st.study, "CHEST (PA AND LAT)", view, 32, 40, 21800506, 101010.5,
                         "CHEST (PA AND LAT)", "postero-anterior", "Erect"])
            split.append([did, st.study, st.subject, st.split])
        labels.append([st.subject, st.study, *[st.labels.get(name, "") for name in LABEL_NAMES]])
    write_csv(root, "mimic-cxr-2.0.0-metadata.csv", META_COLUMNS, meta, gz)
    write_csv(root, "mimic-cxr-2.0.0-split.csv", ["dicom_id", "study_id", "subject_id", "split"], split, gz)
    write_csv(root, "mimic-cxr-2.0.0-chexpert.csv", ["subject_id", "study_id", *LABEL_NAMES], labels, gz)
    return ids


def write_csv(root: Path, name: str, header: list[str], rows: list[list], gz: bool = True) -> Path:
    path = root / (name + (".gz" if gz else ""))
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]
