"""``datakit review`` without the review extra says how to install it."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from datakit.cli.app import app


def test_review_without_textual_says_how_to_install_it(review_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "textual_image", None)  # what an install without the extra looks like
    result = CliRunner().invoke(app, ["review", "--run", str(review_run)])
    assert result.exit_code == 1
    assert "needs textual and textual-image (textual_image is not installed)" in result.output
    assert "pip install 'datakit[review]'" in result.output


def test_review_of_a_run_without_traces_is_an_error_with_a_hint(demo_run):
    result = CliRunner().invoke(app, ["review", "--run", str(demo_run)])
    assert result.exit_code == 1
    assert "has no traces.parquet" in result.output and "datakit annotate" in result.output
