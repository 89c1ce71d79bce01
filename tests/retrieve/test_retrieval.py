"""Retrieval: tokenizer, BM25, term (tree) lookup, the retrieve stage and its commands."""

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

import datakit.retrieve
from datakit import tables
from datakit.cli.app import app
from datakit.config import load_config
from datakit.knowledge.bm25 import explain, get_index, stem, tokenize
from datakit.knowledge.kb import load_kb
from datakit.knowledge.tree import get_matcher, regions_mentioned
from datakit.retrieve import query_texts, retrieve
from datakit.rundir import RunDir

HELDOUT = Path(__file__).parent / "data" / "retrieval_heldout.yaml"


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def study(study_id, **fields):
    base = {
        "study_id": study_id,
        "subject_id": f"p{study_id}",
        "dataset": "mimic-cxr",
        "source_format": "test",
        "split": "train",
        "split_source": "official",
        "report_text": "(raw)",
        "n_images": 1,
    }
    return {**base, **fields}


def studies_table(*rows):
    return tables.conform(pl.DataFrame(list(rows)), tables.Studies)


# held-out quality -------------------------------------------------------------------------------------------


def test_recall_at_3_on_held_out_phrases(kb):
    phrases = yaml.safe_load(HELDOUT.read_text())["phrases"]
    assert len(phrases) >= 100
    assert all(p["expect"] in kb for p in phrases)
    terms = {t for e in kb.entries.values() for t in e.terms}
    assert not [p["text"] for p in phrases if p["text"].lower() in terms], (
        "held-out phrases must not be synonyms"
    )
    results = get_index(kb).search_many([p["text"] for p in phrases], k=3)
    pairs = list(zip(results, phrases, strict=True))
    at1 = sum(bool(r) and r[0].entry_id == p["expect"] for r, p in pairs) / len(pairs)
    at3 = sum(p["expect"] in [h.entry_id for h in r] for r, p in pairs) / len(pairs)
    print(f"\nheld-out retrieval: {len(phrases)} phrases, recall@1 = {at1:.3f}, recall@3 = {at3:.3f}")
    assert at3 >= 0.9


# tokenizer and BM25 -----------------------------------------------------------------------------------------


def test_tokenizer_keeps_hyphenated_terms_and_drops_noise():
    assert tokenize("Ground-glass opacities") == ["ground", "glass", "groundglass", "opacity"]
    assert tokenize("ground glass") == ["ground", "glass"]
    assert tokenize("No ___ or XXXX: the ETT is 4 cm above the carina.") == ["ett", "cm", "carina"]
    assert tokenize("Blunted / blunting of the right costophrenic angles") == [
        "blunt",
        "blunt",
        "costophrenic",
        "angl",
    ]
    assert tokenize(None) == [] and tokenize("") == []


@pytest.mark.parametrize(
    "word, stemmed",
    [
        ("effusions", "effusion"),
        ("opacities", "opacity"),
        ("masses", "mass"),
        ("atelectasis", "atelectasis"),
        ("atelectases", "atelectasis"),
        ("bullae", "bulla"),
        ("enlargement", "enlarg"),
        ("enlarged", "enlarg"),
        ("enlarge", "enlarg"),
        ("pneumothorax", "pneumothorax"),
        ("ptx", "ptx"),
        ("t12", "t12"),
        ("status", "status"),
        ("tube", "tube"),
        ("tubes", "tube"),
    ],
)
def test_light_stemming(word, stemmed):
    assert stem(word) == stemmed


def test_search_ranks_the_expected_entry_and_is_deterministic(kb):
    index = get_index(kb)
    first = index.search("blunted costophrenic angle", k=5)
    assert first[0].entry_id == "pleural_effusion"
    assert [h.score for h in first] == sorted((h.score for h in first), reverse=True)
    assert index.search("blunted costophrenic angle", k=5) == first
    assert index.search_many(["nothing to see: zzz qqq", ""], k=5) == [[], []]
    assert explain(kb, "blunted costophrenic angle", "pleural_effusion") == ["blunt", "costophrenic", "angl"]


def test_ties_are_ordered_by_entry_id(tmp_path):
    folder = tmp_path / "twins"
    (folder / "findings").mkdir(parents=True)
    tree = {"version": 1, "regions": [{"id": "lungs", "name": "Lungs", "description": "both lungs"}]}
    (folder / "tree.yaml").write_text(yaml.safe_dump(tree))
    for entry_id in ("zeta_spot", "alpha_spot", "mid_spot"):
        doc = {
            "id": entry_id,
            "name": "Spot",
            "region": "lungs",
            "chexpert": None,
            "synonyms": ["spot"],
            "definition": "A spot.",
            "signs": [],
            "differential": [],
            "pitfalls": [],
            "radlex": None,
            "laterality": False,
            "sources": [{"title": "test"}],
            "license": "CC0",
        }
        (folder / "findings" / f"{entry_id}.yaml").write_text(yaml.safe_dump(doc))
    twins = load_kb([folder], shipped=False)
    hits = get_index(twins).search("spot", k=2)
    assert hits[0].score == hits[1].score > 0
    assert [h.entry_id for h in hits] == ["alpha_spot", "mid_spot"]


# tree lookup ------------------------------------------------------------------------------------------------


def test_term_matching_takes_the_longest_term_and_counts_negated_mentions(kb):
    found = regions_mentioned("No pericardial effusion. Mass effect on the trachea. No free air.", kb)
    assert found == {
        "airway": ["tracheal_deviation"],
        "heart_mediastinum": ["pericardial_effusion"],
        "upper_abdomen": ["pneumoperitoneum"],
    }
    mentions = get_matcher(kb).mentions("Right IJ line ends in the SVC; NG tube in the stomach.")
    # "NG tube" is a term of enteric_tube and of the support_devices umbrella: both are mentioned
    assert [m.entry_id for m in mentions] == ["central_venous_catheter", "enteric_tube", "support_devices"]
    assert regions_mentioned("No acute cardiopulmonary process.", kb) == {}  # no_finding has no region


# the stage --------------------------------------------------------------------------------------------------


@pytest.fixture
def studies():
    return studies_table(
        study(
            "s1",
            findings="Small left pleural effusion. No pneumothorax.",
            impression="ETT 4 cm above the carina.",
            pleural_effusion=1,
            support_devices=1,
            pneumothorax=0,
            cardiomegaly=-1,
        ),
        study("s2", extracted_text="No acute cardiopulmonary process.", no_finding=1),
        study("s3"),  # no text, no labels
        study("s4", findings="   ", impression=None, extracted_text="Right lower lobe pneumonia."),
    )


def test_query_texts_fall_back_to_the_extracted_text(studies):
    assert query_texts(studies) == [
        "Small left pleural effusion. No pneumothorax.\nETT 4 cm above the carina.",
        "No acute cardiopulmonary process.",
        "",
        "Right lower lobe pneumonia.",
    ]


def test_retrieve_merges_label_tree_and_bm25_hits(studies, kb):
    hits = retrieve(studies, kb, k=5)
    tables.KnowledgeHits.validate(hits)
    s1 = hits.filter(pl.col("study_id") == "s1")
    rows = {r["entry_id"]: r for r in s1.iter_rows(named=True)}
    assert rows["pleural_effusion"]["reason"] == "label:pleural_effusion;tree:pleura;bm25"
    assert rows["pleural_effusion"]["rank"] == 1
    assert 1.5 < rows["pleural_effusion"]["score"] <= 2.5  # label 1.0 + tree 0.5 + BM25 relative to the best
    assert rows["support_devices"]["reason"].startswith("label:support_devices")
    assert rows["cardiomegaly"]["reason"] == "label:cardiomegaly" and rows["cardiomegaly"]["score"] == 0.5
    assert "tree:lines_devices" in rows["endotracheal_tube"]["reason"]
    assert rows["pneumothorax"]["reason"].startswith("tree:pleura")  # negated, still a pertinent mention
    assert s1["rank"].to_list() == list(range(1, s1.height + 1))
    assert s1["score"].to_list() == sorted(s1["score"].to_list(), reverse=True)
    assert hits.filter(pl.col("study_id") == "s2")["entry_id"][0] == "no_finding"
    assert "s3" not in hits["study_id"].to_list()
    s4 = hits.filter(pl.col("study_id") == "s4")
    assert s4["entry_id"][0] == "pneumonia" and "tree:lungs" in s4["reason"][0]


def test_max_hits_caps_each_study_and_keeps_label_hits_first(studies, kb):
    hits = retrieve(studies, kb, k=5, max_hits=2)
    assert hits.group_by("study_id").len()["len"].max() == 2
    assert hits.filter(pl.col("study_id") == "s1")["entry_id"].to_list() == [
        "pleural_effusion",
        "support_devices",
    ]


def test_retrieve_rejects_a_table_that_is_not_studies(kb):
    with pytest.raises(Exception, match="study_id"):
        retrieve(pl.DataFrame({"id": ["x"]}), kb)


def test_stage_writes_knowledge_records_counts_and_skips_when_unchanged(studies, tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.write_table("studies", studies)
    result = datakit.retrieve.run(run)
    assert not result.skipped
    written = pl.read_parquet(run.table_path("knowledge"))
    assert written.equals(result.hits)
    manifest = json.loads(run.manifest_path.read_text())["stages"]["retrieve"]
    counts = manifest["counts"]
    assert counts["study_in"] == 4 and counts["study_with_hits"] == 3 and counts["study_without_hits"] == 1
    assert counts["hits"] == written.height and counts["hits_label"] == 4
    assert manifest["knowledge_entries"] == result.entries >= 60
    again = datakit.retrieve.run(run)
    assert again.skipped and again.hits.equals(written)
    changed = datakit.retrieve.run(run, load_config(overrides={"knowledge.top_k": 1}))
    assert not changed.skipped and changed.hits.height < written.height


# commands ---------------------------------------------------------------------------------------------------


def test_cli_retrieve_runs_the_stage(studies, tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.write_table("studies", studies)
    result = CliRunner().invoke(app, ["retrieve", "--run", str(run.root)])
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output and "studies: 4 in = 3 with hits + 1 without" in result.output
    again = CliRunner().invoke(app, ["retrieve", "--run", str(run.root)])
    assert again.exit_code == 0 and "Unchanged, kept" in again.output


def test_cli_retrieve_without_studies_says_which_stage_to_run(tmp_path):
    result = CliRunner().invoke(app, ["retrieve", "--run", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "does not exist" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["retrieve", "--run", str(tmp_path / "empty")])
    assert (
        result.exit_code == 1
        and "has no studies.parquet" in result.output
        and "datakit ingest" in result.output
    )


def test_cli_search_show_and_list():
    runner = CliRunner()
    found = runner.invoke(app, ["knowledge", "search", "blunted costophrenic angle", "-k", "3"])
    assert found.exit_code == 0, found.output
    assert "pleural_effusion" in found.output and "costophrenic" in found.output
    nothing = runner.invoke(app, ["knowledge", "search", "zzz"])
    assert nothing.exit_code == 0 and "No entry matches 'zzz'" in nothing.output
    shown = runner.invoke(app, ["knowledge", "show", "pneumothorax"])
    assert shown.exit_code == 0 and "RID5352" in shown.output and "Pitfalls" in shown.output
    unknown = runner.invoke(app, ["knowledge", "show", "pneumothorx"])
    assert unknown.exit_code == 1
    assert (
        "no knowledge entry 'pneumothorx'" in unknown.output
        and "did you mean: pneumothorax" in unknown.output
    )
    listed = runner.invoke(app, ["knowledge", "list"])
    assert (
        listed.exit_code == 0
        and "Airway and trachea" in listed.output
        and "Not in a region: no_finding" in listed.output
    )
    region = runner.invoke(app, ["knowledge", "list", "--region", "hila"])
    assert (
        region.exit_code == 0 and "calcified_lymph_nodes" in region.output and "pleura" not in region.output
    )
    bad = runner.invoke(app, ["knowledge", "list", "--region", "lung"])
    assert bad.exit_code == 1 and "did you mean: lungs" in bad.output
