"""Reviewing traces: the run's index paged from parquet, decisions, one study's detail (the app is review.app)."""

from datakit.review.decisions import DECISIONS, DecisionLog, latest_decisions, read_decisions

__all__ = ["DECISIONS", "DecisionLog", "latest_decisions", "read_decisions"]
