"""R2Gen's ``annotation.json`` for IU-Xray and MIMIC-CXR (zhjohnchan/R2Gen), images under ``images/``.

The top level is ``{"train": [...], "val": [...], "test": [...]}``; the list an entry sits in is its split.

- ``r2gen-iu``: an entry per study, ``{"id": "CXR2384_IM-0942", "report": ..., "image_path":
  ["CXR2384_IM-0942/0.png", ...]}``. Study ``"2384"`` (the Open-i uid, as the IU readers give it), image
  ``CXR2384_IM-0942_0``.
- ``r2gen-mimic``: an entry per *image*, ``{"id": <dicom_id>, "study_id": ..., "subject_id": ...,
  "report": ..., "image_path": ["p10/p10000032/s50414267/<dicom_id>.jpg"]}``; entries are grouped into
  studies, and the image id is the file's stem (the dicom_id, as the MIMIC reader gives it).

The report is R2Gen's findings text: it becomes ``findings`` and ``report_text`` as it is (the source has no
headers). annotation.json has no labels, so labels stay null. Image paths come from a file someone else wrote:
each must stay inside ``images/`` (lexically, then with symlinks resolved) before anything touches the file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath

import polars as pl

from datakit.errors import MissingColumnError, SourceLayoutError
from datakit.ingest.base import ReadContext, SourceTables, register

ANNOTATION = "annotation.json"
IMAGES = "images"
# R2Gen writes "val"; MIMIC's own split file says "validate" (mimic-cxr-2.0.0-split.csv; R2Gen's annotation.json).
SPLIT_NAMES = {"train": "train", "val": "val", "validate": "val", "test": "test"}
_IU_ID = re.compile(r"^CXR(\d+)(?:_|$)")
_DIGITS = re.compile(r"^\s*(\d+)\s*$")
_PEEK_BYTES = 1 << 20


class PathGuard:
    """Keeps relative image paths inside one folder; the files themselves are never opened.

    Refused: empty or absolute paths, drive letters, ``..`` climbing above the folder, and paths that leave it
    through a symlink. Resolved folders are cached, so checking a few hundred thousand paths stays cheap.
    """

    def __init__(self, base: Path) -> None:
        self.base = str(base)
        self.real = os.path.realpath(self.base)
        self._real_dirs: dict[str, str] = {}

    def _within(self, real: str) -> bool:
        return real == self.real or real.startswith(self.real.rstrip(os.sep) + os.sep)

    def inside(self, rel: str) -> Path | None:
        """``base / rel`` when it stays inside ``base``, else None."""
        if not rel or "\0" in rel:
            return None
        text = rel.replace("\\", "/")
        if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
            return None
        parts: list[str] = []
        for part in text.split("/"):
            if part == "..":
                if not parts:
                    return None
                parts.pop()
            elif part not in (".", ""):
                parts.append(part)
        if not parts:
            return None
        parent = os.path.join(self.base, *parts[:-1])
        real_parent = self._real_dirs.get(parent)
        if real_parent is None:
            real_parent = self._real_dirs[parent] = os.path.realpath(parent)
        candidate = os.path.join(parent, parts[-1])
        if not self._within(real_parent):
            return None
        if os.path.islink(candidate) and not self._within(os.path.realpath(candidate)):
            return None
        return Path(candidate)


def resolve_inside(base: Path, rel: str) -> Path | None:
    """``base / rel`` if it stays inside ``base``, else None (see :class:`PathGuard`)."""
    return PathGuard(base).inside(rel)


def peek_entry(path: Path) -> dict | None:
    """The first entry of the first list in an annotation.json, read from the file's first megabyte."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_PEEK_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    if not head.lstrip().startswith("{"):
        return None
    start = head.find("[")
    brace = head.find("{", start + 1) if start >= 0 else -1
    if brace < 0:
        return None
    try:
        entry, _ = json.JSONDecoder().raw_decode(head, brace)
    except json.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _digits(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    m = _DIGITS.match(value) if isinstance(value, str) else None
    return m.group(1) if m else None


class R2GenAnnotation:
    """One flavour of R2Gen's annotation.json: ``iu`` (an entry per study) or ``mimic`` (per image)."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.name = f"r2gen-{flavour}"
        self.dataset = "iu-xray" if flavour == "iu" else "mimic-cxr"
        self.required = ["id", "report", "image_path"]
        shape = "per study, ids like CXR2384_IM-0942"
        if flavour == "mimic":
            self.required += ["study_id", "subject_id"]
            shape = "per image, with study_id and subject_id"
        self.looks_for = f"{ANNOTATION} (R2Gen, one entry {shape}) with the images under {IMAGES}/"

    def detect(self, root: Path) -> bool:
        """annotation.json whose first entry has this flavour's shape (read from its first megabyte)."""
        path = root / ANNOTATION
        if not path.is_file():
            return False
        entry = peek_entry(path)
        if entry is None or "image_path" not in entry:
            return False
        return ("study_id" in entry) == (self.flavour == "mimic")

    def read(self, ctx: ReadContext) -> SourceTables:
        """Load the annotation, check its structure, then build studies and images."""
        root = ctx.root.resolve()
        path = root / ANNOTATION
        entries, valid_utf8 = self._load(path)
        self._check_structure(path, entries)
        images_dir = root / IMAGES
        state = _State(ctx, path, images_dir, self, valid_utf8)
        if self.flavour == "iu":
            state.read_iu(entries)
        else:
            state.read_mimic(entries)
        if self.flavour == "iu" and images_dir.is_dir():
            state.unlisted_iu()
        return state.tables()

    def _load(self, path: Path) -> tuple[list[tuple[str, int, object]], bool]:
        if not path.is_file():
            raise SourceLayoutError(f"{path} is missing",
                                    hint=f"point at the folder holding {ANNOTATION} and {IMAGES}/")
        raw = path.read_bytes()
        try:
            text, valid = raw.decode("utf-8"), True
        except UnicodeDecodeError:
            text, valid = raw.decode("utf-8", errors="replace"), False  # entries with bad bytes are set aside
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SourceLayoutError(f"{path} is not valid JSON ({err})", hint="re-download the file") from err
        if not isinstance(data, dict):
            raise SourceLayoutError(
                f"{path}: the top level is a JSON {type(data).__name__}, not an object of split lists",
                hint="use R2Gen's annotation.json as released",
            )
        entries = []
        for key, items in data.items():
            if key not in SPLIT_NAMES:
                raise SourceLayoutError(f"{path} has a top-level key {key!r}; expected train, val and test",
                                        hint="remove or rename the extra list")
            if not isinstance(items, list):
                raise SourceLayoutError(f"{path}: {key!r} holds a JSON {type(items).__name__}, not a list",
                                        hint="use R2Gen's annotation.json as released")
            entries += [(key, i, item) for i, item in enumerate(items)]
        return entries, valid

    def _check_structure(self, path: Path, entries: list[tuple[str, int, object]]) -> None:
        """The first entry of each list must have every required key, else the file is not this format."""
        checked = set()
        for split, _, entry in entries:
            if split in checked or not isinstance(entry, dict):
                continue
            checked.add(split)
            for key in self.required:
                if key not in entry:
                    raise MissingColumnError(path, key, found=sorted(entry))


class _State:
    """What one read collects: rows, counts and the quarantine."""

    def __init__(self, ctx: ReadContext, path: Path, images: Path, fmt: R2GenAnnotation, valid: bool) -> None:
        self.ctx, self.q, self.path, self.fmt, self.valid = ctx, ctx.quarantine, path, fmt, valid
        self.images_dir = images
        self.guard = PathGuard(images)
        self.referenced: set[str] = set()  # every in-folder path an entry names, kept or not
        self.studies: list[dict] = []
        self.images: list[dict] = []
        self.studies_in = 0
        self.images_in = 0
        self.seen_images: set[str] = set()
        self.kept: dict[str, str] = {}  # study id → where its entry is

    def quarantine(self, kind: str, key: str, code: str, message: str, path: object = None) -> None:
        self.q.add(kind, key, code, message, path=path or self.path, dataset=self.fmt.dataset)

    def entry_problem(self, split: str, entry: object, where: str) -> tuple[str, str] | None:
        """Why an entry cannot be used, as (code, message), or None."""
        if not isinstance(entry, dict):
            return "bad_row", f"{where} is a JSON {type(entry).__name__}, not an object"
        missing = [k for k in self.fmt.required if k not in entry]
        if missing:
            return "bad_row", f"{where} has no {', '.join(missing)}"
        if not isinstance(entry["report"], str):
            return "bad_row", f"{where}: report is not text"
        if _paths(entry) is None:
            return "bad_row", f"{where}: image_path is not a list of paths"
        own = entry.get("split")
        if own is not None and (not isinstance(own, str) or SPLIT_NAMES.get(own) != SPLIT_NAMES[split]):
            return "bad_row", f"{where} says split {own!r} but sits in the {split!r} list"
        if not self.valid and "\ufffd" in json.dumps(entry, ensure_ascii=False):
            return "not_utf8", f"{where} holds bytes that are not UTF-8 (re-save the file as UTF-8)"
        return None

    def note_paths(self, entry: object) -> None:
        """Remember the in-folder paths a set-aside entry names, so its files are not called unlisted."""
        for rel in (_paths(entry) if isinstance(entry, dict) else None) or []:
            target = self.guard.inside(rel)
            if target is not None:
                self.referenced.add(str(target))

    def add_images(self, study_id: str, entry: dict, where: str, image_id_of) -> None:
        for rel in _paths(entry) or []:
            self.images_in += 1
            image_id = image_id_of(rel)
            target = self.guard.inside(rel)
            if target is not None:
                self.referenced.add(str(target))
            else:  # refused, but listed: the unlisted-file scan must not count the same file again
                self.referenced.add(str(self.images_dir / rel))
            if target is None:
                self.quarantine("image", image_id, "path_escape",
                                f"{where} gives the image path {rel!r}, which leads outside "
                                f"{self.images_dir}; it was refused and not read — fix the entry")
            elif image_id in self.seen_images:
                self.quarantine("image", image_id, "duplicate_image",
                                f"{where} lists image {image_id}, which an earlier entry already lists; "
                                "the first is kept", path=target)
            elif not target.is_file():
                self.quarantine("image", image_id, "missing_image",
                                f"{where} lists {rel}, but {target} is not on disk; put R2Gen's images under "
                                f"{self.images_dir}, or ignore this if you hold a partial copy on purpose",
                                path=target)
            else:
                self.images.append({"image_id": image_id, "study_id": study_id, "source_path": str(target)})
            self.seen_images.add(image_id)

    def study_row(self, study_id: str, subject_id: str, split: str, report: str) -> dict:
        return {
            "study_id": study_id, "subject_id": subject_id, "dataset": self.fmt.dataset,
            "source_format": self.fmt.name, "split": split, "findings": report,
            "extracted_section": "findings", "extracted_text": report, "report_text": report,
            "report_path": str(self.path),
        }

    def add_study(self, study_id: str, subject_id: str, split: str, report: str, where: str) -> None:
        if report.strip():
            self.studies.append(self.study_row(study_id, subject_id, split, report.strip()))
        else:
            self.quarantine("study", study_id, "empty_report",
                            f"{where} has an empty report, so there is nothing to learn from; "
                            "fix or drop the entry")

    # IU: an entry per study ---------------------------------------------------------------------------------
    def read_iu(self, entries: list[tuple[str, int, object]]) -> None:
        limit = self.ctx.limit
        for split, i, entry in entries:
            if limit is not None and self.studies_in >= limit:
                break
            where = f"{ANNOTATION} {split}[{i}]"
            self.studies_in += 1
            problem = self.entry_problem(split, entry, where)
            m = _IU_ID.match(entry["id"]) if problem is None and isinstance(entry["id"], str) else None
            if problem is None and m is None:
                problem = "bad_row", f"{where}: id {entry['id']!r} is not an IU-Xray id like CXR2384_IM-0942"
            if problem:
                key = str(entry.get("id", where)) if isinstance(entry, dict) else where
                self.quarantine("study", key, problem[0], problem[1] + "; fix or drop the entry")
                self.note_paths(entry)
                continue
            study_id = str(int(m.group(1)))
            if study_id in self.kept:
                msg = (f"study {study_id} is listed twice: {self.kept[study_id]} and {where}; the first is "
                       f"kept and {where} is set aside — remove the copy")
                self.quarantine("study", study_id, "duplicate_study", msg)
                self.note_paths(entry)
                for rel in _paths(entry):
                    self.images_in += 1
                    self.quarantine("image", _iu_image_id(rel), "duplicate_study",
                                    f"listed by {where}; {msg}")
                continue
            self.kept[study_id] = where
            self.add_study(study_id, study_id, SPLIT_NAMES[split], entry["report"], where)
            self.add_images(study_id, entry, where, _iu_image_id)

    def unlisted_iu(self) -> None:
        """PNGs under images/<id>/ that no entry lists (under --limit: in the folders of studies read)."""
        for folder in sorted(p for p in self.images_dir.iterdir() if p.is_dir()):
            m = _IU_ID.match(folder.name)
            if self.ctx.limit is not None and (m is None or str(int(m.group(1))) not in self.kept):
                continue
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() == ".png" and str(f) not in self.referenced:
                    self.images_in += 1
                    self.quarantine("image", _iu_image_id(f"{folder.name}/{f.name}"), "unlisted_image",
                                    f"{f} is under {IMAGES}/ but no entry of {ANNOTATION} lists it; remove "
                                    "the stray file, or use the annotation.json of these images", path=f)

    # MIMIC: an entry per image, grouped into studies ------------------------------------------------------
    def read_mimic(self, entries: list[tuple[str, int, object]]) -> None:
        limit = self.ctx.limit
        groups: dict[str, list[tuple[str, str, dict]]] = {}
        closed = False  # once --limit studies are open, only entries of those studies are read
        for split, i, entry in entries:
            where = f"{ANNOTATION} {split}[{i}]"
            problem = self.entry_problem(split, entry, where)
            study_id = subject_id = None
            if problem is None:
                study_id, subject_id = _digits(entry["study_id"]), _digits(entry["subject_id"])
                if study_id is None or subject_id is None:
                    problem = "bad_row", f"{where}: study_id and subject_id must be numbers"
            if problem:
                if not closed:
                    self.images_in += 1
                    key = str(entry.get("id", where)) if isinstance(entry, dict) else where
                    self.quarantine("image", key, problem[0], problem[1] + "; fix or drop the entry")
                continue
            if study_id not in groups:
                if limit is not None and len(groups) >= limit:
                    closed = True
                    continue
                groups[study_id] = []
            groups[study_id].append((split, where, entry))
        for study_id, members in groups.items():
            self.studies_in += 1
            self._mimic_study(study_id, members)

    def _mimic_study(self, study_id: str, members: list[tuple[str, str, dict]]) -> None:
        first_where = members[0][1]
        disagree = []
        for name, values in (
            ("subject_id", {_digits(e["subject_id"]) for _, _, e in members}),
            ("split", {SPLIT_NAMES[s] for s, _, _ in members}),
            ("report", {e["report"].strip() for _, _, e in members}),
        ):
            if len(values) > 1:
                disagree.append(name)
        if disagree:
            wheres = ", ".join(w for _, w, _ in members[:4]) + (" …" if len(members) > 4 else "")
            self.quarantine("study", study_id, "conflicting_entries",
                            f"the entries of study {study_id} ({wheres}) disagree on "
                            f"{' and '.join(disagree)}; each entry must repeat its study's values — "
                            "fix the file")
        else:
            split, _, entry = members[0]
            subject = _digits(entry["subject_id"])
            self.add_study(study_id, subject, SPLIT_NAMES[split], entry["report"], first_where)
        for _, where, entry in members:
            self.add_images(study_id, entry, where, _mimic_image_id)

    def tables(self) -> SourceTables:
        studies = pl.DataFrame(self.studies, schema={k: pl.Utf8 for k in self.study_row("", "", "", "")})
        columns = ("image_id", "study_id", "source_path")
        images = pl.DataFrame(self.images, schema=dict.fromkeys(columns, pl.Utf8))
        images = images.with_columns(view_raw=pl.lit(None, pl.Utf8))  # R2Gen does not record the view
        return SourceTables(studies, images, studies_in=self.studies_in, images_in=self.images_in)


def _paths(entry: dict) -> list[str] | None:
    """An entry's image paths (a single string counts as one), or None when they are not text."""
    paths = entry.get("image_path")
    if isinstance(paths, str):
        return [paths]
    if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
        return paths
    return None


def _iu_image_id(rel: str) -> str:
    """``CXR2384_IM-0942/0.png`` → ``CXR2384_IM-0942_0``."""
    path = PurePosixPath(rel.replace("\\", "/"))
    if not path.name:
        return rel or "(empty path)"
    return str(path.with_suffix("")).strip("/").replace("/", "_")


def _mimic_image_id(rel: str) -> str:
    """``p10/p10000032/s50414267/<dicom_id>.jpg`` → ``<dicom_id>``."""
    return PurePosixPath(rel.replace("\\", "/")).stem or rel or "(empty path)"


register(R2GenAnnotation("iu"))
register(R2GenAnnotation("mimic"))
