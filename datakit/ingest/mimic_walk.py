"""The part of MIMIC-CXR ingest that touches every file: walk patient folders, read and section the reports.

It runs in worker processes, so it imports only the standard library and the section parser, and returns plain
columnar lists (cheap to pickle). Layout (MIMIC-CXR's cxr-record-list.csv paths)::

    files/p10/p10000032/s50414267.txt          the report, a sibling of the study folder
    files/p10/p10000032/s50414267/<dicom_id>.dcm|.jpg
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datakit.ingest.sections import CustomRules, extract

STUDY_COLUMNS = (
    "study_id",
    "subject_id",
    "report_path",
    "report_text",
    "indication",
    "comparison",
    "findings",
    "impression",
    "last_paragraph",
    "extracted_section",
    "extracted_text",
)


@dataclass
class ScanResult:
    """What a worker found: parsed reports, study folders, image files, and reports it had to set aside."""

    studies: dict[str, list] = field(default_factory=lambda: {c: [] for c in STUDY_COLUMNS})
    # (study_id, subject_id, path) of every study folder
    folders: list[tuple[str, str, str]] = field(default_factory=list)
    # (image_id, study_id, subject_id, path) of every image file inside a study folder
    images: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (study_id, subject_id, code, message, path) of reports that could not be used
    bad_reports: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    # (path, message) of folders that could not be listed
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: ScanResult) -> None:
        """Append another worker's result."""
        for col in STUDY_COLUMNS:
            self.studies[col].extend(other.studies[col])
        self.folders.extend(other.folders)
        self.images.extend(other.images)
        self.bad_reports.extend(other.bad_reports)
        self.unreadable.extend(other.unreadable)


def _read_report(path: str) -> tuple[str | None, str | None, str | None]:
    """Return (text, error_code, message). Newlines are normalised as Python's text mode does."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        return None, "unreadable_report", f"cannot read the report: {err.strerror or err}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return (
            None,
            "not_utf8",
            f"report has bytes that are not UTF-8 at offset {err.start} ({raw[err.start:err.start + 4]!r}); "
            "MIMIC-CXR reports are plain ASCII: re-download or re-extract this file",
        )
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, None, None


def scan_patients(
    patient_dirs: list[str],
    image_exts: tuple[str, ...],
    rules: CustomRules | None,
    max_studies: int | None = None,
) -> ScanResult:
    """Walk the given patient folders (in the order given) and parse every report found."""
    out = ScanResult()
    cols = out.studies
    seen = 0
    for pdir in patient_dirs:
        subject = os.path.basename(pdir)[1:]
        reports: list[tuple[str, str]] = []
        folders: list[tuple[str, str]] = []
        try:
            with os.scandir(pdir) as entries:
                for entry in entries:
                    name = entry.name
                    if name[:1] != "s":
                        continue
                    if name.endswith(".txt"):
                        reports.append((name[1:-4], entry.path))
                    elif entry.is_dir():
                        folders.append((name[1:], entry.path))
        except OSError as err:
            out.unreadable.append((pdir, f"cannot list the patient folder: {err.strerror or err}"))
            continue
        for study, spath in sorted(folders):
            out.folders.append((study, subject, spath))
            try:
                with os.scandir(spath) as files:
                    for f in files:
                        stem, dot, ext = f.name.rpartition(".")
                        if dot and ext.lower() in image_exts:
                            out.images.append((stem, study, subject, f.path))
            except OSError as err:
                out.unreadable.append((spath, f"cannot list the study folder: {err.strerror or err}"))
        for study, rpath in sorted(reports):
            text, code, message = _read_report(rpath)
            if text is None:
                out.bad_reports.append((study, subject, code, message, rpath))
                continue
            ex = extract(text, "s" + study, rules)
            if not ex.text.strip():
                if not text.strip() or ex.section == "custom_span":
                    code, message = "empty_report", "the report has no text to use"
                else:
                    code = "no_usable_section"
                    message = "no FINDINGS, IMPRESSION, final paragraph or COMPARISON text was found in the report"
                out.bad_reports.append((study, subject, code, message, rpath))
                continue
            cols["study_id"].append(study)
            cols["subject_id"].append(subject)
            cols["report_path"].append(rpath)
            cols["report_text"].append(text)
            cols["indication"].append(ex.indication or None)
            cols["comparison"].append(ex.comparison or None)
            cols["findings"].append(ex.findings or None)
            cols["impression"].append(ex.impression or None)
            cols["last_paragraph"].append(ex.last_paragraph or None)
            cols["extracted_section"].append(ex.section)
            cols["extracted_text"].append(ex.text)
        seen += len({s for s, _ in reports} | {s for s, _ in folders})
        if max_studies is not None and seen >= max_studies:
            break
    return out


def list_patient_dirs(files_dir: str) -> list[str]:
    """All ``files/pXX/pNNNNNNNN`` folders, sorted."""
    out: list[str] = []
    with os.scandir(files_dir) as groups:
        group_dirs = sorted(g.path for g in groups if g.name[:1] == "p" and len(g.name) == 3 and g.is_dir())
    for gdir in group_dirs:
        with os.scandir(gdir) as patients:
            out.extend(sorted(p.path for p in patients if p.name[:1] == "p" and p.is_dir()))
    return out
