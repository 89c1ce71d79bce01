"""Helpers to look at traces in tests: the final state after the reflection's corrections."""

from __future__ import annotations

from typing import Any


def final_findings(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """finding id → final state (status, laterality, severity) after applying the corrections to the draft."""
    state: dict[str, dict[str, Any]] = {}
    for item in trace["perception"]:
        if item["finding"] == "normal":
            continue
        prev = state.get(item["finding"])
        rank = {"absent": 0, "uncertain": 1, "present": 2}
        if prev is None or rank[item["status"]] > rank[prev["status"]]:
            state[item["finding"]] = {k: item[k] for k in ("status", "laterality", "severity")}
    for c in trace["reflection"]["corrections"]:
        state[c["finding"]] = dict(c["after"])
    return state
