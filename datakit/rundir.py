"""The run directory: every stage reads and writes its tables here, never through globals.

Layout::

    runs/<name>/datakit.toml  manifest.json  studies.parquet  images.parquet  images/
                knowledge.parquet  traces.parquet  validation.parquet  quarantine.jsonl  cache.sqlite

Files are written atomically (temporary file, then ``os.replace``), so a killed run leaves the old file or the new
one, never half of one. Rows set aside by a stage go to ``quarantine.jsonl`` with a reason code; for every stage the
manifest records rows in = rows out + rows quarantined.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datakit import __version__
from datakit.config import dump_config
from datakit.errors import RunDirError
from datakit.hashing import table_digest

TABLES = {
    "studies": ("studies.parquet", "ingest"),
    "images": ("images.parquet", "ingest"),
    "knowledge": ("knowledge.parquet", "retrieve"),
    "traces": ("traces.parquet", "annotate"),
    "validation": ("validation.parquet", "validate"),
}
# The order stages run in: an upstream stage is named before a downstream one.
STAGE_ORDER = ("ingest", "retrieve", "annotate", "validate", "export")
TABLES_BY_STAGE = {stage: file for file, stage in TABLES.values()}
# Key of a table's content digest in the parquet file's key-value metadata.
CONTENT_KEY = "datakit.content"


def utc_now() -> str:
    """Return the current UTC time as an ISO-8601 string with a ``Z``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old file or the new one."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


@dataclass(frozen=True)
class QuarantineRecord:
    """One row set aside: which stage, what kind of row, its key, a reason code and a message a user can act on."""

    stage: str
    kind: str
    key: str
    code: str
    message: str
    path: str | None = None
    dataset: str | None = None
    datetime_utc: str = field(default_factory=utc_now)


class Quarantine:
    """Collects the rows one stage sets aside. Written to the run directory at the end of the stage."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.records: list[QuarantineRecord] = []

    def add(
        self,
        kind: str,
        key: object,
        code: str,
        message: str,
        *,
        path: object | None = None,
        dataset: str | None = None,
    ) -> None:
        """Set one row aside."""
        self.records.append(
            QuarantineRecord(
                stage=self.stage,
                kind=kind,
                key=str(key),
                code=code,
                message=message,
                path=None if path is None else str(path),
                dataset=dataset,
            )
        )

    def extend(self, records: list[QuarantineRecord]) -> None:
        """Take over records collected elsewhere (e.g. in a worker process)."""
        self.records.extend(records)

    def count(self, kind: str | None = None) -> int:
        """Number of rows set aside, of one kind or in all."""
        return sum(1 for r in self.records if kind is None or r.kind == kind)

    def keys(self, kind: str) -> set[str]:
        """Keys of the rows of one kind set aside so far."""
        return {r.key for r in self.records if r.kind == kind}

    def by_code(self, kind: str | None = None) -> Counter[str]:
        """Counts per reason code."""
        return Counter(r.code for r in self.records if kind is None or r.kind == kind)

    def balance(self, kind: str, rows_in: int, rows_out: int) -> dict[str, int]:
        """Check rows in = rows out + rows quarantined for one kind of row, and return the three counts.

        A mismatch means a row was lost or counted twice: a bug in datakit, so it raises ``RuntimeError``.
        """
        quarantined = self.count(kind)
        if rows_in != rows_out + quarantined:
            raise RuntimeError(
                f"{self.stage}: {kind} rows do not add up: {rows_in} in, {rows_out} out, {quarantined} quarantined"
            )
        return {f"{kind}_in": rows_in, f"{kind}_out": rows_out, f"{kind}_quarantined": quarantined}


class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def create(cls, root: str | Path) -> RunDir:
        """Open ``root`` as a run directory, making it if needed."""
        run = cls(root)
        run.root.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, root: str | Path) -> RunDir:
        """Open an existing run directory."""
        run = cls(root)
        if not run.root.is_dir():
            raise RunDirError(
                f"run directory {run.root} does not exist",
                hint="start a run with `datakit ingest SOURCE --run DIR`",
            )
        return run

    # paths ---------------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Path of a file inside the run directory."""
        return self.root / name

    def table_path(self, table: str) -> Path:
        """Path of one of the run's tables (``studies``, ``images``, ``knowledge``, ``traces``, ``validation``)."""
        return self.root / TABLES[table][0]

    @property
    def images_dir(self) -> Path:
        """Folder of converted 8-bit images."""
        return self.root / "images"

    @property
    def quarantine_path(self) -> Path:
        """The run's quarantine file."""
        return self.root / "quarantine.jsonl"

    @property
    def manifest_path(self) -> Path:
        """The run's manifest."""
        return self.root / "manifest.json"

    @property
    def config_path(self) -> Path:
        """The resolved config of the run."""
        return self.root / "datakit.toml"

    @property
    def cache_path(self) -> Path:
        """Default location of the teacher cache."""
        return self.root / "cache.sqlite"

    # tables --------------------------------------------------------------------------------------------------
    def has_table(self, table: str) -> bool:
        """Whether the table has been written."""
        return self.table_path(table).is_file()

    def write_table(self, table: str, df: Any) -> str:
        """Write a polars DataFrame as the run's ``table``, atomically; return its content identity.

        The identity (:func:`datakit.hashing.table_digest`) is stored in the file's key-value metadata, so it
        travels with the file through a copy, a move, rsync or a tar, and readers need not hash it again.
        """
        digest = table_digest(df)
        with atomic_path(self.table_path(table)) as tmp:
            df.write_parquet(tmp, compression="zstd", statistics=True, metadata={CONTENT_KEY: digest})
        return digest

    def table_identity(self, table: str) -> str | None:
        """The content identity of one of the run's tables; None when it is missing.

        Read from the file's metadata; a table written by something other than datakit (no digest there) is
        hashed from its content.
        """
        import polars as pl

        path = self.table_path(table)
        if not path.is_file():
            return None
        try:
            digest = pl.read_parquet_metadata(path).get(CONTENT_KEY)
        except (pl.exceptions.ComputeError, OSError):
            digest = None
        return digest or table_digest(self.read_table(table))

    def table_rows(self, table: str) -> int:
        """Rows of one of the run's tables, from the parquet footer (nothing else is read); 0 when missing."""
        import polars as pl

        path = self.table_path(table)
        return int(pl.scan_parquet(path).select(pl.len()).collect().item()) if path.is_file() else 0

    def read_table(self, table: str, columns: list[str] | None = None) -> Any:
        """Read one of the run's tables (only ``columns`` if given); a missing table says which stage makes it."""
        import polars as pl

        path = self.table_path(table)
        if not path.is_file():
            stage = TABLES[table][1]
            raise RunDirError(
                f"{self.root} has no {path.name}",
                hint=f"run `datakit {stage}` for this run first",
            )
        try:
            return pl.read_parquet(path, columns=columns)
        except (pl.exceptions.ComputeError, OSError) as err:
            stage = TABLES[table][1]
            raise RunDirError(
                f"{path} cannot be read ({err.__class__.__name__}: {str(err).splitlines()[0][:200]})",
                hint=f"the file is damaged or not a table datakit wrote; run `datakit {stage}` for this run again",
            ) from err

    # quarantine ----------------------------------------------------------------------------------------------
    def read_quarantine(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Quarantined rows, of one stage or all."""
        if not self.quarantine_path.is_file():
            return []
        rows = []
        with open(self.quarantine_path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    if stage is None or row.get("stage") == stage:
                        rows.append(row)
        return rows

    def write_quarantine(self, quarantine: Quarantine) -> None:
        """Replace the rows of ``quarantine.stage`` in quarantine.jsonl with the new ones; other stages' stay."""
        kept = [r for r in self.read_quarantine() if r.get("stage") != quarantine.stage]
        lines = [json.dumps(r, ensure_ascii=False) for r in kept]
        lines += [json.dumps(asdict(r), ensure_ascii=False) for r in quarantine.records]
        write_atomic(self.quarantine_path, "".join(line + "\n" for line in lines))

    # manifest ------------------------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict (empty skeleton if not written yet)."""
        if self.manifest_path.is_file():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {"datakit_version": __version__, "created_utc": utc_now(), "stages": {}}

    def record_stage(
        self,
        stage: str,
        *,
        counts: dict[str, int],
        fingerprint: str | None = None,
        inputs: tuple[str, ...] = (),
        outputs: dict[str, str | None] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record that ``stage`` finished, with the identities of the tables it read and wrote.

        ``inputs`` names the tables read; ``outputs`` maps each table written to the identity
        :meth:`write_table` returned.

        Written last, after the stage's outputs: a stage killed before this line counts as not run.
        """
        manifest = self.manifest()
        manifest["datakit_version"] = __version__
        manifest["updated_utc"] = utc_now()
        entry = {"finished_utc": utc_now(), "counts": counts, "fingerprint": fingerprint,
                 "inputs": {t: self.table_identity(t) for t in inputs}, "outputs": dict(outputs or {}), **extra}
        manifest.setdefault("stages", {})[stage] = entry
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        return entry

    def stage_entry(self, stage: str) -> dict[str, Any] | None:
        """What the manifest says of ``stage``'s last finished run, if any."""
        return self.manifest().get("stages", {}).get(stage)

    def save_config(self, config: Any) -> None:
        """Write the resolved configuration as the run's datakit.toml (keys' *names* only, never keys)."""
        write_atomic(self.config_path, dump_config(config))

    def check_upstream(self, reads: tuple[str, ...], consumer: str) -> None:
        """Refuse to go on from tables whose own inputs have been rewritten since they were made.

        ``datakit ingest --limit 5`` into a run that already has traces, then ``datakit validate``, would otherwise
        judge 26 stale traces against 5 new studies without a word. Tables are compared by content identity, so a
        copied, moved or unpacked run is as fresh as it was; the earliest stale stage is named, so the hint sends
        the user back far enough.
        """
        stale: dict[str, str] = {}  # stage → the input table that changed under it
        seen: set[str] = set()
        todo = [TABLES[t][1] for t in reads if t in TABLES]
        while todo:
            stage = todo.pop()
            if stage in seen or stage == consumer:
                continue
            seen.add(stage)
            entry = self.stage_entry(stage) or {}
            for table, recorded in (entry.get("inputs") or {}).items():
                if recorded is not None and self.table_identity(table) != recorded:
                    stale.setdefault(stage, table)
                if table in TABLES:
                    todo.append(TABLES[table][1])
        if stale:
            stage = min(stale, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER))
            made = TABLES_BY_STAGE.get(stage, stage)
            raise RunDirError(
                f"{self.table_path(stale[stage]).name} changed after `datakit {stage}` wrote {made}",
                hint=f"run `datakit {stage}` again (cached teacher answers are reused), then `datakit {consumer}`",
            )
