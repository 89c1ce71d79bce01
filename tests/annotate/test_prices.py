"""The shipped price table: dated, with sources, overridable, and shown in the dry-run estimate."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from datakit.annotate.prices import lookup, shipped
from datakit.annotate.request import cost_usd
from datakit.cli.app import app
from datakit.config import PriceConfig
from tests.annotate.test_llm_teacher import answer_for
from tests.fakes.openai_server import FakeOpenAI


def test_the_table_is_dated_and_sourced():
    table = shipped()
    assert table.as_of[:4].isdigit() and table.sources
    assert all(s.startswith("https://") for s in table.sources)
    assert table.models["gpt-4o"].input_per_mtok == 2.5 and table.models["gpt-4o-mini"].output_per_mtok == 0.6


def test_snapshots_and_router_prefixes_find_their_base_model():
    assert lookup({}, "gpt-4o-2024-08-06")[0] == shipped().models["gpt-4o"]
    assert lookup({}, "gpt-4o-2024-05-13")[0].input_per_mtok == 5.0  # listed itself: its own price
    assert lookup({}, "claude-sonnet-4-20250514")[0].output_per_mtok == 15.0
    assert lookup({}, "openai/gpt-4.1-mini")[0].input_per_mtok == 0.4
    assert lookup({}, "Qwen/Qwen2.5-VL-7B-Instruct") is None


def test_the_config_overrides_the_table():
    own = {"gpt-4o": PriceConfig(input_per_mtok=1.0, output_per_mtok=1.0)}
    assert lookup(own, "gpt-4o")[1] == "config"
    assert cost_usd(own, "gpt-4o", 1_000_000, 1_000_000) == pytest.approx(2.0)
    assert cost_usd({}, "gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert cost_usd({}, "gpt-4o", 1_000_000, 0, factor=0.5) == pytest.approx(1.25)


def test_dry_run_with_a_known_model_projects_a_cost_and_says_the_date(demo_run):
    with FakeOpenAI(answer_for) as server:
        res = CliRunner().invoke(app, ["annotate", "--run", str(demo_run), "--teacher", "llm", "--model", "gpt-4o",
                                       "--base-url", server.base_url, "--dry-run"], env={"COLUMNS": "200"})
        assert server.chat_requests() == []
    assert res.exit_code == 0, res.output
    assert "unknown" not in res.output and "$" in res.output
    assert f"list prices of {shipped().as_of}" in res.output
