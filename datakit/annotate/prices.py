"""What a model costs: the run's ``[teacher.prices]`` first, then datakit's dated table of list prices."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_ROUTER_PREFIX = re.compile(r"^(?:openai|anthropic)/")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class PriceTable:
    """The shipped list prices, with the date they were taken and where from."""

    as_of: str
    sources: tuple[str, ...]
    models: Mapping[str, Price]


@functools.cache
def shipped() -> PriceTable:
    """The table datakit ships (``datakit/annotate/data/prices.toml``)."""
    raw = tomllib.loads(resources.files("datakit.annotate").joinpath("data/prices.toml").read_text("utf-8"))
    models = {name: Price(float(p["input_per_mtok"]), float(p["output_per_mtok"]))
              for name, p in raw["models"].items()}
    return PriceTable(raw["as_of"], tuple(raw.get("sources", ())), models)


def _names(model: str) -> list[str]:
    """The names a model is looked up under, most specific first."""
    plain = _ROUTER_PREFIX.sub("", model)
    names = [model, plain]
    base = _DATED.sub("", plain)
    if base != plain:
        names.append(base)
    return list(dict.fromkeys(names))


def lookup(own: Mapping[str, Any], model: str) -> tuple[Any, str] | None:
    """(price, where from: "config" or "table") of ``model``; ``None`` when neither knows it."""
    for name in _names(model):
        if name in own:
            return own[name], "config"
    table = shipped().models
    for name in _names(model):
        if name in table:
            return table[name], "table"
    return None
