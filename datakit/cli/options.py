"""Flags that override configuration keys, kept with their names so a bad value says which flag gave it."""

from __future__ import annotations

from typing import Any


def flag_overrides(pairs: dict[str, tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """``{dotted key: (flag, value)}`` → (overrides for ``load_config``, ``{dotted key: flag}``)."""
    return {k: v for k, (_, v) in pairs.items()}, {k: f for k, (f, _) in pairs.items()}
