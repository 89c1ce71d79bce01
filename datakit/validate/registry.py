"""The check registry: ``@check("name")`` turns a function over tables into a validation check.

A check receives the :class:`~datakit.validate.context.Context` of the run and returns its *problems*: a
polars DataFrame with one row per problem found, columns ``study_id``, ``code`` and ``message``. Every study
the check judged and returned no problem for passed it. The built-in checks go through this same
decorator.

Severity is per code: ``error`` rejects the trace, ``warning`` only flags it, ``off`` drops the problem. A
check declares the default of each code it can return; ``validate.severity`` in datakit.toml overrides it with
the most specific key that matches, ``check.code`` > ``code`` > ``check``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import polars as pl

from datakit.errors import UnknownFormat
from datakit.registry import Registry

if TYPE_CHECKING:
    from datakit.validate.context import Context

Severity = Literal["error", "warning", "off"]
SEVERITY_RANK = {"error": 0, "warning": 1}
PROBLEM_SCHEMA = {"study_id": pl.Utf8, "code": pl.Utf8, "message": pl.Utf8}
OK = "ok"


@dataclass(frozen=True)
class Check:
    """One registered check."""

    name: str
    fn: Callable[[Context], pl.DataFrame]
    codes: dict[str, Severity] = field(default_factory=dict)  # default severity of each code
    severity: Severity = "error"  # for codes not listed in ``codes``
    judges: Literal["valid", "all"] = "valid"  # "valid": traces that pass the JSON Schema; "all": every trace
    description: str = ""

    def severity_of(self, code: str, overrides: dict[str, Severity]) -> Severity:
        """The effective severity of one of this check's codes."""
        for key in (f"{self.name}.{code}", code, self.name):
            if key in overrides:
                return overrides[key]
        return self.codes.get(code, self.severity)

    def level(self, overrides: dict[str, Severity]) -> str:
        """The most severe level any of the check's codes has (shown on rows that passed)."""
        levels = {self.severity_of(c, overrides) for c in (self.codes or ["__any__"])}
        return "error" if "error" in levels else "warning"




def check(
    name: str,
    *,
    codes: dict[str, Severity] | None = None,
    severity: Severity = "error",
    judges: Literal["valid", "all"] = "valid",
) -> Callable[[Callable[[Context], pl.DataFrame]], Callable[[Context], pl.DataFrame]]:
    """Register ``fn(ctx) -> problems`` as the check ``name`` (a later registration replaces it)."""
    if judges not in ("valid", "all"):
        raise ValueError(f"judges must be 'valid' or 'all', not {judges!r}")

    def deco(fn: Callable[[Context], pl.DataFrame]) -> Callable[[Context], pl.DataFrame]:
        doc = (fn.__doc__ or "").strip().splitlines()
        CHECKS.add(name, Check(name, fn, dict(codes or {}), severity, judges, doc[0] if doc else ""))
        return fn

    return deco


BUILTIN = (
    "schema",
    "clinical",
    "evidence",
    "faithfulness",
    "knowledge",
    "reflection",
    "leakage",
    "privacy",
    "form",
    "diversity",
    "priors",
    "judge",
)


# The built-in checks register themselves with the same decorator a user's check uses.
CHECKS: Registry[Check] = Registry("check", builtin=tuple(f"datakit.validate.checks.{m}" for m in BUILTIN))


def load_builtin() -> None:
    """Import the modules of the built-in checks (they register themselves)."""
    CHECKS.load()


def load_plugins(plugins: list[str]) -> None:
    """Import user modules (dotted names or ``.py`` paths) whose ``@check`` functions register more checks."""
    import importlib
    import importlib.util
    from pathlib import Path

    from datakit.errors import ConfigError

    for plugin in plugins:
        path = Path(plugin).expanduser()
        try:
            if plugin.endswith(".py"):
                if not path.is_file():
                    raise ConfigError(f"check plugin {plugin} does not exist", hint="fix validate.plugins")
                spec = importlib.util.spec_from_file_location(f"datakit_check_{path.stem}", path)
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            else:
                importlib.import_module(plugin)
        except ImportError as err:
            raise ConfigError(
                f"cannot import check plugin {plugin!r}: {err}", hint="fix validate.plugins"
            ) from err


def selected(skip: list[str]) -> list[Check]:
    """The checks to run, without the skipped ones (unknown names are an error)."""
    unknown = [s for s in skip if s not in CHECKS]
    if unknown:
        raise UnknownFormat(
            f"unknown check {unknown[0]!r} in validate.skip", hint=f"choose from: {', '.join(CHECKS.names())}"
        )
    # built-in checks first in their own order (whatever imported them first), then users' in registration
    # order
    names = [n for n in BUILTIN if n in CHECKS] + [n for n in CHECKS if n not in BUILTIN]
    return [CHECKS[n] for n in names if n not in skip]


def problems(frame: pl.DataFrame, code: str, message: pl.Expr | str) -> pl.DataFrame:
    """Problems with one code for every row of ``frame`` (with ``study_id``); ``message`` may be an expr."""
    msg = pl.lit(message) if isinstance(message, str) else message
    return frame.select(pl.col("study_id"), pl.lit(code).alias("code"), msg.cast(pl.Utf8).alias("message"))


def no_problems() -> pl.DataFrame:
    """An empty problems frame."""
    return pl.DataFrame(schema=PROBLEM_SCHEMA)


def concat_problems(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Several problem frames as one (in order)."""
    parts = [p.select(list(PROBLEM_SCHEMA)).cast(PROBLEM_SCHEMA) for p in parts if p.height]
    return pl.concat(parts) if parts else no_problems()
