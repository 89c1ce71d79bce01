"""``datakit.validate.run``: what it writes, the gate, bad input, overrides and users' own checks."""

from __future__ import annotations

import json

import polars as pl
import pytest

import datakit.validate
from datakit import tables
from datakit.config import DatakitConfig, ValidateConfig
from datakit.errors import ConfigError, RunDirError, SchemaVersionError, UnknownFormat, ValidationGateError
from datakit.validate import CHECKS
from tests.validate.bad_traces import CASES, GOOD
from tests.validate.builders import EFFUSION_LABELS, Corpus, KeywordLabeler, effusion_trace

BAD = {sid: kw for sid, _, _, kw in CASES}


def _config(**validate) -> DatakitConfig:
    # the corpus spoils traces against their reports for other checks to find: faithfulness has its own tests
    return DatakitConfig(validate=ValidateConfig(**{"skip": ["diversity", "faithfulness"], **validate}))


@pytest.fixture
def small(tmp_path):
    corpus = Corpus()
    for sid, kw in GOOD[:3]:
        corpus.add(sid, **kw)
    for sid in ("b_json", "c_not_perceived", "l_prior"):
        corpus.add(sid, **{k: v for k, v in BAD[sid].items() if k != "warning"})
    return corpus.write(tmp_path / "run")


def test_run_writes_table_quarantine_and_manifest(small):
    result = datakit.validate.run(small, _config(), labeler=KeywordLabeler())
    table = pl.read_parquet(small.table_path("validation"))
    tables.Validation.validate(table)
    assert table.equals(result.table)
    assert (
        result.summary["traces"] == 6 and result.summary["rejected"] == 2 and result.summary["flagged"] == 1
    )
    assert result.pass_rate == pytest.approx(4 / 6, abs=1e-6)
    q = small.read_quarantine("validate")
    assert {(r["key"], r["kind"], r["code"]) for r in q} == {
        ("b_json", "trace", "invalid_json"),
        ("c_not_perceived", "trace", "label_not_perceived"),
    }
    reasons = next(r["message"] for r in q if r["key"] == "c_not_perceived")
    assert "clinical/label_not_perceived: Pleural Effusion is labelled positive" in reasons
    stage = small.manifest()["stages"]["validate"]
    assert stage["counts"] == {"trace_in": 6, "trace_out": 4, "trace_quarantined": 2, "trace_flagged": 1}
    assert stage["by_check"]["clinical"] == {"failed": 1, "flagged": 0}


def test_rerun_replaces_its_quarantine_rows_and_keeps_other_stages(small):
    from datakit.rundir import Quarantine

    other = Quarantine("annotate")
    other.add("study", "s9", "teacher_failed", "no answer")
    small.write_quarantine(other)
    datakit.validate.run(small, _config(), labeler=KeywordLabeler())
    datakit.validate.run(small, _config(), labeler=KeywordLabeler())
    stages = [r["stage"] for r in small.read_quarantine()]
    assert stages.count("annotate") == 1 and stages.count("validate") == 2


def test_summary_has_counts_codes_and_two_examples_per_check(small):
    summary = datakit.validate.run(small, _config(), labeler=KeywordLabeler()).summary
    json.dumps(summary)  # plain data
    by_name = {c["check"]: c for c in summary["checks"]}
    assert list(by_name) == [
        "schema",
        "clinical",
        "evidence",
        "knowledge",
        "reflection",
        "leakage",
        "privacy",
        "form",
        "priors",
    ]
    assert summary["prior_references"] == {"traces": 0, "sentences": 0}
    schema = by_name["schema"]
    assert (schema["judged"], schema["passed"], schema["failed"], schema["flagged"]) == (6, 5, 1, 0)
    assert schema["codes"] == {"invalid_json": 1}
    assert schema["examples"][0]["study_id"] == "b_json"
    assert by_name["leakage"]["codes"] == {"prior_reference": 1} and by_name["leakage"]["flagged"] == 1
    assert all(len(c["examples"]) <= 2 for c in summary["checks"])


def test_gate_raises_after_writing(small):
    with pytest.raises(ValidationGateError) as err:
        datakit.validate.run(small, _config(), labeler=KeywordLabeler(), min_pass_rate=0.9)
    assert err.value.exit_code == 4
    assert "66.7% of traces passed validation, below the gate of 90.0%" in str(err.value)
    assert err.value.result.summary["gate"] == "failed"
    assert small.has_table("validation")
    ok = datakit.validate.run(small, _config(min_pass_rate=0.5), labeler=KeywordLabeler())
    assert ok.summary["gate"] == "passed" and ok.summary["min_pass_rate"] == 0.5


def test_run_without_traces_says_to_annotate(tmp_path):
    corpus = Corpus()
    corpus.add("s1", effusion_trace(), EFFUSION_LABELS)
    run = corpus.write(tmp_path / "run")
    run.table_path("traces").unlink()
    with pytest.raises(RunDirError) as err:
        datakit.validate.run(run, _config())
    assert "has no traces.parquet" in str(err.value) and "datakit annotate --run" in err.value.hint
    run.write_table("traces", tables.empty(tables.Traces))
    with pytest.raises(RunDirError, match="holds no traces"):
        datakit.validate.run(run, _config())


def test_traces_of_an_older_schema_version_are_refused(tmp_path):
    corpus = Corpus()
    corpus.add("s1", effusion_trace(), EFFUSION_LABELS)
    run = corpus.write(tmp_path / "run")
    old = pl.read_parquet(run.table_path("traces")).with_columns(pl.lit("trace.v0").alias("schema_id"))
    run.write_table("traces", old)
    with pytest.raises(SchemaVersionError) as err:
        datakit.validate.run(run, _config())
    assert "'trace.v0'" in str(err.value) and "re-run `datakit annotate`" in err.value.hint
    # an even older file, from before schema ids were recorded
    run.write_table("traces", old.drop("schema_id", "cache_keys"))
    with pytest.raises(SchemaVersionError, match="no schema_id column"):
        datakit.validate.run(run, _config())
    run.write_table("traces", old.with_columns(pl.lit("trace.v1").alias("schema_id")).drop("cache_keys"))
    with pytest.raises(SchemaVersionError, match="lacks the column"):
        datakit.validate.run(run, _config())
    wrong = old.with_columns(pl.lit("trace.v1").alias("schema_id"), pl.col("n_images").cast(pl.Int64))
    run.write_table("traces", wrong)
    with pytest.raises(SchemaVersionError, match="n_images"):
        datakit.validate.run(run, _config())


def test_duplicate_traces_of_a_study_are_set_aside(tmp_path):
    corpus = Corpus()
    corpus.add("s1", effusion_trace(), EFFUSION_LABELS)
    corpus.add("s2", effusion_trace(), EFFUSION_LABELS)
    corpus.traces.append(dict(corpus.traces[0]))
    run = corpus.write(tmp_path / "run")
    result = datakit.validate.run(run, _config(), labeler=KeywordLabeler())
    assert result.counts["trace_in"] == 3 and result.counts["trace_quarantined"] == 2
    assert result.table.filter(pl.col("study_id") == "s1").height == len(result.summary["checks"])
    codes = sorted(r["code"] for r in run.read_quarantine("validate"))
    assert codes == ["duplicate_trace", "table_row_invalid"]


def test_severity_overrides_and_skip(small):
    cfg = _config(
        severity={"l_prior": "error", "prior_reference": "error", "clinical": "warning"},
        skip=["diversity", "privacy", "faithfulness"],
    )
    result = datakit.validate.run(small, cfg, labeler=KeywordLabeler())
    checks = [c["check"] for c in result.summary["checks"]]
    assert "privacy" not in checks
    rows = {(r["study_id"], r["check"]): r for r in result.table.to_dicts()}
    assert rows[("l_prior", "leakage")]["severity"] == "error"
    assert rows[("c_not_perceived", "clinical")]["severity"] == "warning"
    assert {r["key"] for r in small.read_quarantine("validate")} == {"b_json", "l_prior"}
    off = datakit.validate.run(
        small, _config(severity={"leakage.prior_reference": "off"}), labeler=KeywordLabeler()
    )
    assert off.table.filter(pl.col("study_id") == "l_prior")["passed"].all()


def test_unknown_check_name_in_skip(small):
    with pytest.raises(UnknownFormat, match="unknown check 'diversty'"):
        datakit.validate.run(small, _config(skip=["diversty"]), labeler=KeywordLabeler())


def test_a_users_check_from_a_plugin_file(small, tmp_path):
    plugin = tmp_path / "my_checks.py"
    plugin.write_text(
        "import polars as pl\n"
        "from datakit.validate import check, problems\n\n"
        "@check('short_reasoning', codes={'one_step': 'warning'})\n"
        "def short_reasoning(ctx):\n"
        "    '''Reasoning with a single step.'''\n"
        "    n = ctx.steps.group_by('study_id').len()\n"
        "    return problems(n.filter(pl.col('len') < 2), 'one_step', 'the reasoning has one step')\n"
    )
    try:
        result = datakit.validate.run(small, _config(plugins=[str(plugin)]), labeler=KeywordLabeler())
        mine = next(c for c in result.summary["checks"] if c["check"] == "short_reasoning")
        assert mine["description"] == "Reasoning with a single step."
        assert (mine["judged"], mine["flagged"]) == (5, 1)
        assert mine["examples"][0] == {
            "study_id": "g_normal",
            "code": "one_step",
            "severity": "warning",
            "message": "the reasoning has one step",
        }
        assert result.summary["rejected"] == 2
    finally:
        CHECKS.remove("short_reasoning")
    with pytest.raises(ConfigError, match="does not exist"):
        datakit.validate.run(small, _config(plugins=[str(tmp_path / "nope.py")]))


def test_a_check_returning_the_wrong_columns_is_a_clear_bug(small):
    @datakit.validate.check("broken")
    def broken(ctx):
        return ctx.texts.select("study_id")

    try:
        with pytest.raises(TypeError, match="check 'broken' returned a frame without code, message"):
            datakit.validate.run(small, _config(), labeler=KeywordLabeler())
    finally:
        CHECKS.remove("broken")


def test_a_plain_python_check_over_iter_traces(small):
    @datakit.validate.check("few_regions", codes={"few_regions": "error"})
    def few_regions(ctx):
        """Every trace looks at five regions or more."""
        rows = [
            (sid, "few_regions", f"{n} regions")
            for sid, trace in ctx.iter_traces()
            if (n := len({i["region"] for i in trace["perception"]})) < 5
        ]
        return pl.DataFrame(rows, schema=["study_id", "code", "message"], orient="row")

    try:
        result = datakit.validate.run(small, _config(), labeler=KeywordLabeler())
    finally:
        CHECKS.remove("few_regions")
    mine = result.table.filter(pl.col("check") == "few_regions")
    assert mine.height == 5 and mine["passed"].all()  # the invalid trace is not judged by content checks


def test_all_traces_invalid(tmp_path):
    corpus = Corpus()
    corpus.add("a", '{"perception": [', EFFUSION_LABELS)
    corpus.add("b", "{}", EFFUSION_LABELS)
    run = corpus.write(tmp_path / "run")
    result = datakit.validate.run(run, _config(skip=[]), labeler=KeywordLabeler())
    assert result.summary["pass_rate"] == 0.0 and result.counts["trace_quarantined"] == 2
    assert set(result.table["check"]) == {"schema"}
    assert all(c["judged"] == 0 for c in result.summary["checks"] if c["check"] != "schema")
