"""The contract between the ingest pipeline and one source format (one format per module).

A format module registers a :class:`SourceFormat`. Its ``read`` returns the source's studies and images as
polars tables plus how many rows it saw; every row it sets aside goes to ``ctx.quarantine`` with a reason code.
The pipeline (``datakit.ingest.run``) does what is common to all formats: views, splits, image conversion,
checks, and writing the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import polars as pl

from datakit.config import IngestConfig
from datakit.registry import Registry
from datakit.rundir import Quarantine


@dataclass
class ReadContext:
    """What a reader gets: the source folder, the ingest config and the stage's quarantine."""

    root: Path
    config: IngestConfig
    quarantine: Quarantine

    @property
    def limit(self) -> int | None:
        """Read at most this many studies (the first ones in a stable order)."""
        return self.config.limit

    @property
    def workers(self) -> int:
        """Processes a reader may use."""
        from datakit.parallel import cores

        return self.config.workers or cores()


@dataclass
class SourceTables:
    """What a reader returns.

    ``studies`` has the columns of :data:`datakit.tables.Studies` that the source knows (missing nullable ones
    are added as nulls; ``split`` may be null where the source has no official split; ``split_source`` and
    ``n_images`` are filled by the pipeline). ``images`` has at least ``image_id, study_id, source_path`` and may
    have ``view_raw, source_width, source_height``. ``studies_in`` / ``images_in`` count every row the reader saw,
    kept or quarantined, so the pipeline can check that the counts add up.
    """

    studies: pl.DataFrame
    images: pl.DataFrame
    studies_in: int
    images_in: int
    # figures worth reporting that are not rows, e.g. {"listed_not_on_disk": 1200} for a partial download
    notes: dict[str, int] = field(default_factory=dict)


class SourceFormat(Protocol):
    """One source format: how to recognise it and how to read it."""

    name: str  # e.g. "mimic-cxr", "iu-xray-xml"
    dataset: str  # "mimic-cxr" or "iu-xray"
    looks_for: str  # what detection checks, shown when no format matches

    def detect(self, root: Path) -> bool:
        """Whether ``root`` holds this format (cheap: looks at a few names, reads nothing big)."""
        ...

    def read(self, ctx: ReadContext) -> SourceTables:
        """Read the source into tables."""
        ...


# Importing a format's module registers it; the registry imports the built-in ones on first lookup.
FORMATS: Registry[SourceFormat] = Registry(
    "source format", builtin=("datakit.ingest.mimic_cxr", "datakit.ingest.iu_xray_xml", "datakit.ingest.iu_xray_csv",
             "datakit.ingest.r2gen")
)


def register(fmt: SourceFormat) -> SourceFormat:
    """Add a format to the registry (used by each format module at import)."""
    return FORMATS.add(fmt.name, fmt)


def get_format(name: str) -> SourceFormat:
    """Look a format up by name."""
    return FORMATS.get(name)


# ViewPosition values (mimic-cxr-2.0.0-metadata.csv) and IU-Xray projections → the images table's views.
_VIEW_MAP = {
    "PA": "PA",
    "AP": "AP",
    "LATERAL": "LATERAL",
    "LL": "LL",
    "FRONTAL": "FRONTAL",
    "POSTERO-ANTERIOR": "PA",
    "ANTERO-POSTERIOR": "AP",
}


def normalize_view_expr(col: str = "view_raw") -> pl.Expr:
    """:func:`normalize_view` as a polars expression (for whole tables)."""
    cleaned = pl.col(col).str.strip_chars().str.to_uppercase()
    return cleaned.replace_strict(_VIEW_MAP, default="other", return_dtype=pl.Utf8).fill_null("other")


def normalize_view(raw: str | None) -> str:
    """Map a source's view label (ViewPosition, projection) to PA, AP, FRONTAL, LATERAL, LL or other."""
    if raw is None:
        return "other"
    return _VIEW_MAP.get(raw.strip().upper(), "other")
