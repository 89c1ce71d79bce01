"""Import of Open Imaging Finding Models, on real files copied unchanged from the findingmodels repo."""

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from datakit.cli.app import app
from datakit.errors import KnowledgeError
from datakit.knowledge.fm_import import LICENSE_COPY, import_finding_models
from datakit.knowledge.kb import load_configured, load_kb, user_home_dir


@pytest.fixture
def models(data_dir):
    return data_dir / "findingmodels"


def test_imports_every_model_with_its_codes_provenance_and_licence(models, tmp_path):
    into = tmp_path / "kn"
    result = import_finding_models(models, into)
    assert result.found == 8 and len(result.written) == 8 and not result.skipped
    assert (into / LICENSE_COPY).read_bytes() == (models / "LICENSE").read_bytes() and result.license_copied
    kb = load_kb([into])
    source = json.loads((models / "pneumothorax.fm.json").read_text())
    e = kb.get("fm_pneumothorax")
    assert e.origin == "imported" and e.name == source["name"] and e.definition == source["description"]
    assert e.synonyms == source["synonyms"]
    assert e.provenance["oifm_id"] == source["oifm_id"] == "OIFM_GMTS_023339"
    assert e.provenance["contributors"] == source["contributors"]
    assert e.index_codes == [{"system": "GAMUTS", "code": "23339", "display": "pneumothorax"}]
    assert "MIT" in e.license and "Open Imaging Data Model Initiative" in e.license
    assert e.sources[0]["url"] == "https://github.com/openimagingdata/findingmodels"
    assert e.signs == e.differential == e.pitfalls == []
    # the shipped pneumothorax entry is not replaced: imports get their own ids
    assert kb.get("pneumothorax").origin == "shipped"


@pytest.mark.parametrize(
    "fm_id, region, label",
    [
        ("fm_pneumothorax", "pleura", "pneumothorax"),  # the name is a shipped term
        ("fm_costophrenic_angle_blunting", "pleura", "pleural_effusion"),
        ("fm_hiatal_hernia", "heart_mediastinum", None),
        ("fm_chest_tube", "lines_devices", "support_devices"),
        ("fm_pacemaker", "lines_devices", "support_devices"),
        ("fm_vertebral_compression_fracture", "bones_soft_tissue", "fracture"),
        ("fm_pulmonary_mass", "lungs", "lung_lesion"),
        ("fm_grid_artifact", None, None),  # a technique finding: cannot tell
    ],
)
def test_region_and_label_are_mapped_only_where_they_can_be_told(models, tmp_path, fm_id, region, label):
    import_finding_models(models, tmp_path / "kn")
    entry = load_kb([tmp_path / "kn"]).get(fm_id)
    assert (entry.region, entry.chexpert) == (region, label)


def test_radelement_codes_are_kept(models, tmp_path):
    import_finding_models(models / "vertebral_compression_fracture.fm.json", tmp_path / "kn")
    doc = yaml.safe_load((tmp_path / "kn/findings/fm_vertebral_compression_fracture.yaml").read_text())
    assert doc["index_codes"] == [
        {"system": "RADELEMENT", "code": "RDES230", "display": "vertebral compression fracture"}
    ]
    assert doc["provenance"]["file"] == "vertebral_compression_fracture.fm.json"


def test_a_malformed_file_is_reported_and_skipped_and_the_rest_imported(models, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pneumothorax.fm.json", "chest_tube.fm.json", "LICENSE"):
        shutil.copy(models / name, src / name)
    (src / "broken.fm.json").write_text('{"oifm_id": "OIFM_X_1", "name": ')
    (src / "nameless.fm.json").write_text(json.dumps({"oifm_id": "OIFM_X_2", "description": "something"}))
    (src / "badsyn.fm.json").write_text(
        json.dumps({"oifm_id": "OIFM_X_3", "name": "x", "description": "y", "synonyms": "z"})
    )
    result = import_finding_models(src, tmp_path / "kn")
    assert len(result.written) == 2
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in result.skipped}
    assert set(reasons) == {"broken.fm.json", "nameless.fm.json", "badsyn.fm.json"}
    assert reasons["broken.fm.json"].startswith("not valid JSON")
    assert reasons["nameless.fm.json"] == "'name' is missing or not a non-empty string"
    assert reasons["badsyn.fm.json"] == "'synonyms' should be a list, got str"


def test_reimport_updates_but_never_overwrites_a_users_own_entry(models, tmp_path):
    into = tmp_path / "kn"
    import_finding_models(models, into)
    again = import_finding_models(models, into)
    assert len(again.written) == 8 and not again.skipped
    own = into / "findings" / "fm_pacemaker.yaml"
    doc = yaml.safe_load(own.read_text())
    doc.pop("provenance")
    own.write_text(yaml.safe_dump(doc))
    third = import_finding_models(models, into)
    assert len(third.written) == 7
    assert "is not an import of" in third.skipped[0].reason


def test_default_destination_is_the_home_folder_which_runs_then_load(models):
    result = import_finding_models(models / "pneumothorax.fm.json")
    assert result.into == user_home_dir()
    assert load_configured().get("fm_pneumothorax").origin == "imported"


def test_a_missing_source_is_an_error(tmp_path):
    with pytest.raises(KnowledgeError, match="does not exist"):
        import_finding_models(tmp_path / "nope")
    with pytest.raises(KnowledgeError, match=r"holds no \*\.fm\.json files"):
        import_finding_models(tmp_path)


def test_cli_import_prints_a_summary_and_skipped_files(models, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(models, src)
    (src / "broken.fm.json").write_text("[1, 2]")
    result = CliRunner().invoke(app, ["knowledge", "import", str(src), "--into", str(tmp_path / "kn")])
    assert result.exit_code == 0, result.output
    assert "Imported 8 of 9 finding models" in result.output
    assert "lines_devices" in result.output and "support_devices 2" in result.output
    assert "broken.fm.json: the top level should be a JSON object, got list" in result.output
    shown = CliRunner().invoke(
        app, ["knowledge", "show", "fm_chest_tube", "--knowledge", str(tmp_path / "kn")]
    )
    assert shown.exit_code == 0 and "OIFM_" not in shown.output.split("Sources")[0]
    assert "imported" in shown.output and "Open Imaging Finding Model" in shown.output


def test_cli_import_of_a_missing_path_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["knowledge", "import", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output
