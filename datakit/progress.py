"""The progress bar of a stage's long loop: counts, rate, elapsed time and ETA on stderr (rich).

Stages draw it themselves (the offline teacher, image conversion, validation's checks, export's batches), only
when asked (``progress=True``: the CLI's default, off with ``--no-progress``). rich allows one live display at
a time; whoever shows something live between bars (``datakit build``'s spinner) registers a callback with
:func:`before_bar`, and it is called before a bar starts, so the two never overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_before: list[Callable[[], None]] = []


def before_bar(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` before any bar starts (e.g. to stop a spinner); returns a function that unregisters it."""
    _before.append(callback)
    return lambda: _before.remove(callback) if callback in _before else None


def starting_bar() -> None:
    """Tell whoever registered with :func:`before_bar` that a bar is about to start."""
    for callback in list(_before):
        callback()


class StageProgress:
    """A rich bar with counts, elapsed time and ETA for synchronous work; nothing at all when not ``enabled``."""

    def __init__(self, label: str, *, total: int | None, enabled: bool = True, unit: str = "") -> None:
        self._progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                # off a terminal rich prints the bar once, when it stops: one log line
                console=Console(stderr=True), transient=False,
            )
            self._task = self._progress.add_task(label, total=total)

    def __enter__(self) -> StageProgress:
        if self._progress is not None:
            starting_bar()
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more done."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def describe(self, label: str) -> None:
        """Change the label (e.g. the name of the check now running)."""
        if self._progress is not None:
            self._progress.update(self._task, description=label)
