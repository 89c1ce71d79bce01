"""``datakit build``: ingest → retrieve → annotate → validate → export for one ``datakit.toml``.

Each stage is the library's own ``run``; a stage whose inputs, settings and code are unchanged since it last
finished skips itself (the stage contract), so a rerun after a crash goes on where it stopped: finished stages are
not redone, and the LLM teacher's cache answers every request already answered. ``--from`` and ``--only`` force
part of the flow to run again. A validation gate below ``validate.min_pass_rate`` stops before export.

Usage::

    result = datakit.pipeline.build("datakit.toml")
    result = datakit.pipeline.build(None)          # the bundled demo, offline teacher, into runs/demo
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from datakit.config import DatakitConfig, load_config
from datakit.errors import ConfigError, DatakitError, RunDirError, ValidationGateError
from datakit.rundir import RunDir

STAGES = ("ingest", "retrieve", "annotate", "validate", "export")
DEMO_RUN = Path("runs/demo")


def demo_config() -> Path:
    """The bundled demo's config (in a source checkout: examples/demo/datakit.toml)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "demo" / "datakit.toml"
    if not path.is_file():
        raise DatakitError(
            "the bundled demo ships with datakit's source checkout, and this installation has none",
            hint="write a config for your data with `datakit init`, then `datakit build datakit.toml`",
        )
    return path


@dataclass
class Plan:
    """What a build will do: the resolved config, where it reads and writes, and which stages it runs."""

    config: DatakitConfig
    config_path: Path
    source: Path
    run: RunDir
    stages: tuple[str, ...]
    forced: frozenset[str]
    limit: int | None = None


def _resolve_against(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def plan(
    config_path: str | Path | None = None,
    *,
    run: str | Path | None = None,
    from_stage: str | None = None,
    only: str | None = None,
    limit: int | None = None,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> Plan:
    """Resolve the config and decide the run folder and the stages; nothing is written."""
    demo = config_path is None
    path = demo_config() if demo else Path(config_path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist",
                          hint="write one with `datakit init PATH`, or leave CONFIG out to build the demo")
    config = load_config(path, overrides=overrides, flag_names=flags)
    base = path.resolve().parent
    source = _resolve_against(base, config.source)
    if source is None:
        raise ConfigError(f"{path} names no source", hint="add `source = \"path/to/the/dataset\"` at the top")
    if run is not None:
        run_dir = Path(run)
    elif demo:
        run_dir = DEMO_RUN
    elif config.run is not None:
        run_dir = _resolve_against(base, config.run)
    else:
        raise ConfigError(f"{path} names no run folder",
                          hint="add `run = \"runs/NAME\"` at the top, or give --run DIR")
    for name, value in (("--from", from_stage), ("--only", only)):
        if value is not None and value not in STAGES:
            raise ConfigError(f"{name} {value!r} is not a stage", hint=f"choose one of: {', '.join(STAGES)}")
    if from_stage and only:
        raise ConfigError("--from and --only cannot be combined", hint="give one of them")
    if only:
        stages, forced = (only,), frozenset({only})
    elif from_stage:
        stages = STAGES[STAGES.index(from_stage):]
        forced = frozenset(stages)
    else:
        stages, forced = STAGES, frozenset()
    if limit is not None:
        run_dir = run_dir.with_name(f"{run_dir.name}-limit{limit}")  # a quick look never touches the full run
    updates: dict[str, Any] = {"source": str(source), "run": str(Path(run_dir).resolve())}
    if limit is not None:
        updates["ingest"] = config.ingest.model_copy(update={"limit": limit})
    config = config.model_copy(update=updates)
    return Plan(config, path, source, RunDir(run_dir), stages, forced, limit)


class Reporter(Protocol):
    """What a build tells its caller while it runs (the CLI draws it)."""

    def start(self, stage: str, forced: bool) -> None:
        """A stage begins (``forced``: by --from or --only)."""

    def done(self, report: StageReport) -> None:
        """A stage ended: it ran, or was skipped."""


@dataclass
class StageReport:
    """One stage of a build: whether it ran or was skipped, how long it took, and its result."""

    name: str
    status: str  # "ran" | "skipped" | "stopped"
    seconds: float
    result: Any = None
    note: str = ""


@dataclass
class BuildResult:
    """A finished (or gated) build: the plan, each stage's report, and the teacher's request counts."""

    plan: Plan
    stages: list[StageReport] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)  # made / cached / failed in this build
    seconds: float = 0.0


def _cache_counts(run: RunDir, config: DatakitConfig) -> tuple[int, int]:
    """(answered, failed) rows of the run's teacher cache; zeros when there is none yet."""
    from datakit.annotate.cache import Cache

    path = Path(config.teacher.cache_path) if config.teacher.cache_path else run.cache_path
    if not path.is_file():
        return 0, 0
    with Cache(path) as cache:
        answered = cache.count(answered=True)
        return answered, cache.count(answered=False) - answered  # rows without an answer: calls that failed


def _call(stage: str, p: Plan, progress: bool) -> Any:
    """Run one stage's library entry point (each skips itself when nothing it depends on changed)."""
    force = stage in p.forced
    if stage == "ingest":
        import datakit.ingest

        # a path, not the RunDir: ingest makes the folder
        return datakit.ingest.run(p.source, p.run.root, p.config, force=force, progress=progress)
    if stage == "retrieve":
        import datakit.retrieve

        return datakit.retrieve.run(p.run, p.config, force=force)
    if stage == "annotate":
        import datakit.annotate

        return datakit.annotate.run(p.run, p.config, progress=progress, force=force)
    if stage == "validate":
        import datakit.validate

        try:
            return datakit.validate.run(p.run, p.config, force=force, progress=progress)
        except ValidationGateError as err:
            return getattr(err, "result", None)  # the gate is checked below, for a skipped validate too
    import datakit.export

    return datakit.export.run(p.run, p.config, force=force, progress=progress)


def check_gate(run: RunDir, config: DatakitConfig) -> None:
    """Stop before export when the recorded pass rate is below ``validate.min_pass_rate`` (exit code 4)."""
    gate = config.validate.min_pass_rate
    entry = run.manifest().get("stages", {}).get("validate") or {}
    rate = entry.get("pass_rate")
    if gate is None or rate is None or rate >= gate:
        return
    reasons = ", ".join(f"{code} ({n})" for code, n in sorted((entry.get("quarantined_by_code") or {}).items(),
                                                                key=lambda kv: -kv[1])[:3])
    raise ValidationGateError(
        f"the build stopped before export: {rate:.1%} of traces passed validation, below "
        f"validate.min_pass_rate = {gate:.1%}" + (f"; main reasons: {reasons}" if reasons else ""),
        hint=f"see why with `datakit validate --run {run.root}`; fix the teacher or prompts, or lower "
             "validate.min_pass_rate, then build again (finished stages are not redone)",
    )


def run_plan(p: Plan, *, progress: bool = True, reporter: Reporter | None = None) -> BuildResult:
    """Run the planned stages in order; a failing stage stops the build with its own error."""
    if p.stages[0] != "ingest":
        _check_before(p)
    started = time.perf_counter()
    result = BuildResult(p)
    answered0, failed0 = _cache_counts(p.run, p.config)
    for stage in p.stages:
        if stage == "export":
            check_gate(p.run, p.config)
        if reporter is not None:
            reporter.start(stage, stage in p.forced)
        t0 = time.perf_counter()
        out = _call(stage, p, progress)
        skipped = bool(getattr(out, "skipped", False))
        report = StageReport(stage, "skipped" if skipped else "ran", time.perf_counter() - t0, out)
        result.stages.append(report)
        if reporter is not None:
            reporter.done(report)
    if "export" not in p.stages and "validate" in p.stages:
        check_gate(p.run, p.config)
    answered1, failed1 = _cache_counts(p.run, p.config)
    result.requests = _requests(p.run, answered1 - answered0, failed1 - failed0)
    result.seconds = time.perf_counter() - started
    return result


def _requests(run: RunDir, made: int, failed: int) -> dict[str, int]:
    """Teacher requests of this build: sent and answered, answered from the cache, failed."""
    import polars as pl

    if not run.has_table("traces"):
        return {"made": made, "cached": 0, "failed": failed}
    keys = pl.read_parquet(run.table_path("traces"), columns=["cache_keys"])["cache_keys"]
    needed = int(keys.list.len().sum() or 0)
    return {"made": made, "cached": max(0, needed - made), "failed": failed}


def _check_before(p: Plan) -> None:
    """--from / --only: the stages before the first one run must have finished in this run."""
    done = p.run.manifest().get("stages", {}) if p.run.root.is_dir() else {}
    missing = [s for s in STAGES[: STAGES.index(p.stages[0])] if s not in done]
    if missing:
        raise RunDirError(
            f"{p.run.root} has not finished {', '.join(missing)}, which {p.stages[0]} needs",
            hint="build without --from/--only first (finished stages are skipped)",
        )


def build(config_path: str | Path | None = None, *, progress: bool = True, reporter: Reporter | None = None,
          **options: Any) -> BuildResult:
    """Plan and run a build (see :func:`plan` for the options)."""
    return run_plan(plan(config_path, **options), progress=progress, reporter=reporter)
