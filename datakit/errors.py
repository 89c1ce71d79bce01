"""The one error tree. ``str(err)`` is shown to the user; ``hint`` says what to try next.

Anything that is not a :class:`DatakitError` is a bug and keeps its traceback.
"""

from __future__ import annotations


class DatakitError(Exception):
    """Base class of every error meant for the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(DatakitError):
    """The configuration (datakit.toml, flags, environment) is not valid."""

    exit_code = 2


class UnknownFormat(DatakitError):
    """A format, teacher, check or exporter name that no registry knows."""

    exit_code = 2


class SourceLayoutError(DatakitError):
    """The source folder does not look like the dataset it is read as."""


class MissingColumnError(SourceLayoutError):
    """A required column is missing from a source file."""

    def __init__(self, path: object, column: str, *, found: list[str] | None = None) -> None:
        seen = f" (it has: {', '.join(found)})" if found else ""
        super().__init__(
            f"{path} has no column {column!r}{seen}",
            hint="check that the file is the one the dataset ships, unmodified",
        )
        self.path = path
        self.column = column


class IngestError(DatakitError):
    """Ingest read the source but kept nothing a later stage could use."""


class SplitLeakError(DatakitError):
    """A subject appears in more than one split."""


class RunDirError(DatakitError):
    """The run directory is missing, or lacks what a stage needs."""


class KnowledgeError(DatakitError):
    """A knowledge entry (shipped, user or imported) is not valid."""


class TemplateError(DatakitError):
    """A prompt template is missing, unsafe, or uses an undefined variable."""


class SchemaVersionError(DatakitError):
    """A table or trace was written under a schema version this datakit cannot read."""


class TeacherError(DatakitError):
    """The teacher cannot go on (as opposed to one study failing, which is quarantined)."""

    exit_code = 3


class TeacherUnavailable(TeacherError):
    """The teacher's endpoint cannot be reached."""


class TeacherAuthError(TeacherError):
    """The endpoint refused the API key, or no key was found."""


class ValidationGateError(DatakitError):
    """Too many traces failed validation for the pipeline to go on."""

    exit_code = 4


class ExportCheckError(DatakitError):
    """A rendered training row fails an export check (``export.strict``): names the study, the file and the row."""

    exit_code = 5
