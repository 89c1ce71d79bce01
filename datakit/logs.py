"""Where datakit's log records go: the run's ``datakit.log`` always, the console with ``--verbose``.

Records come from loggers under ``datakit`` (the teacher's retries, with their reason and delay, above all). They
still propagate, so an application's own logging setup sees them too.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER = "datakit"
LOG_FILE = "datakit.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Stderr(logging.StreamHandler):
    """A stderr handler that looks ``sys.stderr`` up at each record, so a live progress bar can redirect it."""

    @property
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup(run_dir: str | Path | None = None, *, verbose: bool | None = None) -> None:
    """Log INFO records to ``run_dir/datakit.log`` (appended) and, when ``verbose``, to stderr.

    Safe to call again: a new run directory replaces the previous one's file; ``verbose=None`` leaves the console
    as it was.
    """
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    if verbose is not None:
        _drop(logger, _Stderr)
        if verbose:
            console = _Stderr()
            console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(console)
    if run_dir is not None:
        path = (Path(run_dir) / LOG_FILE).resolve()
        current = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
        if [h.baseFilename for h in current] != [str(path)]:
            _drop(logger, logging.FileHandler)
            file = logging.FileHandler(path, encoding="utf-8")
            file.setFormatter(logging.Formatter(_FORMAT))
            logger.addHandler(file)


def _drop(logger: logging.Logger, kind: type[logging.Handler]) -> None:
    for handler in [h for h in logger.handlers if isinstance(h, kind)]:
        logger.removeHandler(handler)
        handler.close()
