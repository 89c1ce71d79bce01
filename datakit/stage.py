"""The stage contract: what every stage reads, writes and depends on, its content fingerprint, and its run.

Each stage (ingest, retrieve, annotate, validate, export) declares one :class:`Stage`. Its *fingerprint* is a
hash of everything its output depends on:

- the identities of the tables it reads (their content, stored in each parquet file: ``RunDir.table_identity``),
  never their paths or modification times, so a copied, moved, synced or unpacked run is as fresh as it was;
- the config sections it reads;
- the content it depends on beyond the tables (``depends``): the knowledge base, the lexicon, prompt templates,
  the trace schema, the version of the stage's own rules where they change the output;
- the one-off options of this call that change what it writes (``--limit``).

A stage whose fingerprint equals the one its last finished run recorded, and whose outputs are still the tables
it wrote, is skipped and says so (the DVC model: ``dvc.lock`` records dependency and output hashes). A stage
whose inputs were made from tables rewritten since refuses, naming the stage to run again
(:meth:`datakit.rundir.RunDir.check_upstream`). The manifest records, per stage, the fingerprint, the identities
of its inputs and outputs, counts in / out / quarantined and timings.

Usage inside a stage's ``run``::

    run, config = open_run(run_dir, config)
    started = STAGE.start(run, config, force=force, limit=limit)
    if started.skipped:
        return ...  # from started.entry, the manifest's record of the last run
    ...  # the work; outputs = {"knowledge": run.write_table("knowledge", hits)}
    STAGE.finish(run, config, started, counts=counts, outputs=outputs)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit import __version__, logs
from datakit.config import DatakitConfig, resolve_config
from datakit.hashing import content_hash
from datakit.registry import Registry
from datakit.rundir import RunDir

Depends = Callable[[RunDir, DatakitConfig], dict[str, Any]]
log = logging.getLogger("datakit.stage")


@dataclass
class Started:
    """A stage call under way: its fingerprint, when it started, and (when skipped) the last run's record."""

    fingerprint: str
    started: float
    entry: dict[str, Any] | None = None

    @property
    def skipped(self) -> bool:
        """Whether nothing changed since the last run, so the stage does no work."""
        return self.entry is not None

    @property
    def seconds(self) -> float:
        """Seconds since the call started."""
        return time.perf_counter() - self.started


@dataclass(frozen=True)
class Stage:
    """One stage of the flow and what its output depends on."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    config_sections: tuple[str, ...]
    # Bump when the stage's own rules change what it writes, so an unchanged run is not wrongly skipped.
    version: int = 1
    depends: Depends | None = None
    options: tuple[str, ...] = field(default=())  # one-off call options that change the output (limit, …)
    # dotted config keys that change how fast, never what: left out of the fingerprint (workers, rate limits)
    ignore: tuple[str, ...] = field(default=())

    def fingerprint(self, run: RunDir, config: DatakitConfig, **options: Any) -> str:
        """The hash of everything this stage's output depends on."""
        data = config.model_dump(mode="json")
        for dotted in self.ignore:
            *parents, last = dotted.split(".")
            node = data
            for key in parents:
                node = node.get(key) or {}
            node.pop(last, None)
        return content_hash(
            {
                "stage": self.name,
                "version": self.version,
                "inputs": {t: run.table_identity(t) for t in self.reads},
                "config": {s: data.get(s) for s in self.config_sections},
                "depends": self.depends(run, config) if self.depends else {},
                "options": {k: options.get(k) for k in self.options},
            }
        )

    def current(self, run: RunDir, fingerprint: str) -> dict[str, Any] | None:
        """The manifest's record of the last run when it had this fingerprint and its outputs are unchanged."""
        entry = run.stage_entry(self.name)
        if not entry or entry.get("fingerprint") != fingerprint:
            return None
        outputs = entry.get("outputs") or {}
        for table in self.writes:
            if outputs.get(table) is None or run.table_identity(table) != outputs[table]:
                return None
        return entry

    def start(
        self,
        run: RunDir,
        config: DatakitConfig,
        *,
        force: bool = False,
        keep: DatakitConfig | None = None,
        **options: Any,
    ) -> Started:
        """Refuse stale inputs, then decide whether this call has work to do.

        ``keep`` is the config to save with the run when the stage is skipped (default ``config``): without the
        settings meant for this call only.
        """
        t0 = time.perf_counter()
        logs.setup(run.root)  # every stage's story goes to the run's datakit.log
        run.check_upstream(self.reads, self.name)
        fingerprint = self.fingerprint(run, config, **options)
        entry = None if force else self.current(run, fingerprint)
        if entry is not None:  # nothing to do, and the call worked: its settings become the run's
            run.save_config(keep or config)
            log.info("%s: nothing changed since %s; skipped", self.name, entry.get("finished_utc"))
        else:
            log.info("%s: started (fingerprint %s%s)", self.name, fingerprint, ", forced" if force else "")
        return Started(fingerprint, t0, entry)

    def finish(
        self,
        run: RunDir,
        config: DatakitConfig,
        started: Started,
        *,
        counts: dict[str, int],
        outputs: dict[str, str | None],
        save_config: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record the finished run in the manifest (last) and keep the resolved config as the run's own."""
        if save_config:
            run.save_config(config)
        log.info("%s: finished in %.1f s: %s", self.name, started.seconds, counts)
        return run.record_stage(
            self.name,
            counts=counts,
            fingerprint=started.fingerprint,
            inputs=self.reads,
            outputs=outputs,
            seconds=round(started.seconds, 3),
            datakit_version=__version__,
            **extra,
        )


STAGES: Registry[Stage] = Registry(
    "stage",
    builtin=("datakit.ingest", "datakit.retrieve", "datakit.annotate", "datakit.validate"),
)


def open_run(
    run_dir: str | Path | RunDir,
    config: DatakitConfig | str | Path | None = None,
    *,
    create: bool = False,
    overrides: dict[str, Any] | None = None,
) -> tuple[RunDir, DatakitConfig]:
    """The run directory and its resolved config, the same way from Python and from the CLI.

    ``config``: a resolved :class:`DatakitConfig` (used as it is), a TOML file, or None for the run's own
    ``datakit.toml``; then environment variables and ``overrides`` (flags) on top (:func:`resolve_config`).
    """
    if isinstance(run_dir, RunDir):
        run = run_dir
    else:
        run = RunDir.create(run_dir) if create else RunDir.open(run_dir)
    if isinstance(config, DatakitConfig) and not overrides:
        return run, config
    return run, resolve_config(run.config_path, config, overrides=overrides)
