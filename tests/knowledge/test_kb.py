"""The knowledge base: shipped entries and tree are valid; user folders extend, override, and fail loudly."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import jsonschema
import pytest
import yaml

from datakit.errors import DatakitError, KnowledgeError
from datakit.knowledge import UnknownKnowledgeId
from datakit.knowledge.kb import load_configured, load_kb, user_home_dir
from datakit.resources import data_path, schema_path
from datakit.tables import LABEL_COLUMNS

REGIONS = [
    "airway",
    "lungs",
    "pleura",
    "heart_mediastinum",
    "hila",
    "bones_soft_tissue",
    "upper_abdomen",
    "lines_devices",
]


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def entry_yaml(**over):
    doc = {
        "id": "tree_in_bud",
        "name": "Tree-in-bud opacities",
        "region": "lungs",
        "chexpert": "lung_opacity",
        "synonyms": ["tree-in-bud", "tree in bud nodularity"],
        "definition": "Branching centrilobular nodules.",
        "signs": ["small branching opacities at the lung periphery"],
        "differential": ["infectious bronchiolitis"],
        "pitfalls": ["hard to see on radiographs"],
        "radlex": None,
        "laterality": True,
        "sources": [{"title": "our own notes"}],
        "license": "CC0",
    }
    doc.update(over)
    return doc


def user_folder(tmp_path, *docs, tree=None, raw=None):
    folder = tmp_path / "myknowledge"
    (folder / "findings").mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (folder / "findings" / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for name, text in (raw or {}).items():
        (folder / "findings" / name).write_text(text)
    if tree is not None:
        (folder / "tree.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    return folder


# shipped knowledge ------------------------------------------------------------------------------------------


def test_shipped_knowledge_is_large_and_covers_every_chexpert_label(kb):
    assert len(kb) >= 60
    for column in LABEL_COLUMNS:
        own = kb.get(column)  # every label has its own entry, named by the column
        assert own.chexpert == column and own.origin == "shipped"
        assert kb.by_label(column)[0].id == column
        assert len(own.synonyms) >= 10, f"{column}: the labeler takes its mention phrases from these"
    devices = {e.id for e in kb.by_label("support_devices")}
    assert {
        "endotracheal_tube",
        "enteric_tube",
        "central_venous_catheter",
        "picc",
        "pacemaker",
        "chest_tube",
        "pulmonary_artery_catheter",
        "tracheostomy_tube",
        "port_catheter",
    } <= devices


def test_every_shipped_entry_validates_against_the_json_schema(kb):
    schema = json.loads(schema_path("knowledge_entry.v1.json").read_text())
    assert schema["$id"].endswith("knowledge_entry:v1") and schema["version"] == "1"
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted((data_path("knowledge") / "findings").glob("*.yaml"))
    assert len(files) == len(kb)
    for path in files:
        doc = yaml.safe_load(path.read_text())
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, f"{path.name}: {errors}"
        assert path.stem == doc["id"]
        assert "MIT" in doc["license"]
        assert doc["radlex"] is None or doc["radlex"].startswith("RID")


def test_tree_has_the_eight_regions_in_reading_order_and_lists_every_entry(kb):
    tree = yaml.safe_load((data_path("knowledge") / "tree.yaml").read_text())
    jsonschema.validate(tree, json.loads(schema_path("perception_tree.v1.json").read_text()))
    assert list(kb.regions) == REGIONS
    for region in kb.regions.values():
        assert region.name and len(region.description) > 40
        assert len(region.normal_phrases) >= 3, region.id
        assert region.findings, region.id
    for entry in kb.entries.values():
        if entry.id == "no_finding":
            assert entry.region is None  # it concerns the whole study
            continue
        assert entry.region in kb.regions, entry.id
        assert entry.id in kb.regions[entry.region].findings, entry.id
        assert kb.regions_of(entry.id)[0] == entry.region
    assert kb.regions_of("hiatal_hernia") == ["heart_mediastinum", "upper_abdomen"]


def test_terms_are_lowercased_and_deduplicated(kb):
    terms = kb.get("cardiomegaly").terms
    assert terms[0] == "cardiomegaly" and "cardiomegally" in terms and len(terms) == len(set(terms))
    assert all(t == t.lower() for t in terms)


def test_lookups_name_close_ids_when_nothing_matches(kb):
    with pytest.raises(UnknownKnowledgeId, match="pleural_efusion") as err:
        kb.get("pleural_efusion")
    assert "pleural_effusion" in err.value.hint
    with pytest.raises(DatakitError, match="not a CheXpert label"):
        kb.by_label("effusion")
    with pytest.raises(DatakitError, match="no perception-tree region"):
        kb.by_region("lung")
    assert [e.id for e in kb.by_region("hila")][0] == "hilar_enlargement"


def test_loads_are_cached_until_a_file_changes(tmp_path):
    folder = user_folder(tmp_path, entry_yaml())
    first = load_kb([folder])
    assert load_kb([folder]) is first
    path = folder / "findings" / "tree_in_bud.yaml"
    path.write_text(yaml.safe_dump(entry_yaml(name="Tree-in-bud pattern")))
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    second = load_kb([folder])
    assert second is not first and second.get("tree_in_bud").name == "Tree-in-bud pattern"
    assert second.fingerprint != first.fingerprint


# user folders -----------------------------------------------------------------------------------------------


def test_user_entries_extend_and_override_the_shipped_ones(tmp_path, kb):
    override = dict(kb.get("pleural_effusion").to_dict())
    for key in ("origin", "path", "overrides", "provenance"):
        override.pop(key, None)
    override["synonyms"] = ["our effusion word"]
    folder = user_folder(
        tmp_path,
        entry_yaml(),
        override,
        tree={
            "version": 1,
            "regions": [
                {"id": "lungs", "normal_phrases": ["Lungs look fine."]},
                {"id": "breast", "name": "Breasts", "description": "Breast shadows and implants."},
            ],
        },
    )
    mine = load_kb([folder])
    assert len(mine) == len(kb) + 1
    new = mine.get("tree_in_bud")
    assert new.origin == "user" and new.path.endswith("tree_in_bud.yaml")
    assert "tree_in_bud" in mine.regions["lungs"].findings  # joined its region by itself
    replaced = mine.get("pleural_effusion")
    assert replaced.origin == "user" and replaced.synonyms == ["our effusion word"]
    assert replaced.overrides == kb.get("pleural_effusion").path
    assert mine.regions["lungs"].normal_phrases[-1] == "Lungs look fine."
    assert list(mine.regions)[-1] == "breast"
    assert kb.get("pleural_effusion").synonyms != ["our effusion word"]  # the shipped load is untouched


def test_an_entry_with_provenance_counts_as_imported(tmp_path):
    doc = entry_yaml(provenance={"format": "open-imaging-finding-model", "oifm_id": "OIFM_X_1"})
    assert load_kb([user_folder(tmp_path, doc)]).get("tree_in_bud").origin == "imported"


BROKEN = {
    "wrong field type": (entry_yaml(synonyms="tree-in-bud"), "synonyms", "should be a list"),
    "unknown region": (entry_yaml(region="lung"), "region", "unknown region 'lung'"),
    "unknown chexpert label": (entry_yaml(chexpert="Effusion"), "chexpert", "not a CheXpert label column"),
    "unknown field": (entry_yaml(colour="red"), "colour", "not a known field"),
    "missing field": ({k: v for k, v in entry_yaml().items() if k != "definition"}, "definition", "missing"),
    "bad radlex id": (entry_yaml(radlex="34539"), "radlex", "does not match"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_user_entry_names_file_entry_and_field(tmp_path, case):
    doc, field, words = BROKEN[case]
    folder = user_folder(tmp_path, doc)
    with pytest.raises(KnowledgeError) as err:
        load_kb([folder])
    message = str(err.value)
    assert "tree_in_bud.yaml" in message and "entry 'tree_in_bud'" in message
    assert f"field '{field}'" in message and words in message
    assert err.value.field == field and err.value.entry_id == "tree_in_bud"
    assert err.value.hint


def test_a_duplicate_id_in_one_folder_is_an_error(tmp_path):
    folder = user_folder(tmp_path, entry_yaml())
    (folder / "findings" / "copy.yaml").write_text(yaml.safe_dump(entry_yaml(name="Copy")))
    with pytest.raises(KnowledgeError, match="duplicate id") as err:
        load_kb([folder])
    assert err.value.field == "id" and err.value.entry_id == "tree_in_bud"
    assert "tree_in_bud.yaml" in str(err.value) and "copy.yaml" in str(err.value)


def test_a_yaml_syntax_error_names_file_entry_and_line(tmp_path):
    bad = textwrap.dedent("""\
        id: bad_entry
        name: Bad
        synonyms: [one, two
        region: lungs
    """)
    folder = user_folder(tmp_path, raw={"bad_entry.yaml": bad})
    with pytest.raises(
        KnowledgeError, match=r"bad_entry\.yaml: entry 'bad_entry': YAML syntax error at line \d+"
    ):
        load_kb([folder])


def test_a_key_given_twice_is_an_error_not_a_silent_loss(tmp_path):
    # YAML keeps the last of two equal keys; the first list of synonyms would vanish without a word
    twice = "id: twice\nname: Twice\nregion: lungs\nsynonyms: [one]\nsynonyms: [two]\n"
    folder = user_folder(tmp_path, raw={"twice.yaml": twice})
    with pytest.raises(KnowledgeError, match=r"twice\.yaml: entry 'twice': .*line 5.*'synonyms' is given twice"):
        load_kb([folder])


def test_an_empty_entry_file_is_an_error(tmp_path):
    folder = user_folder(tmp_path, raw={"blank.yaml": "# nothing yet\n"})
    with pytest.raises(KnowledgeError, match=r"blank\.yaml: entry 'blank': the file is empty"):
        load_kb([folder])


def test_every_problem_is_reported_at_once(tmp_path):
    folder = user_folder(tmp_path, entry_yaml(region="lung"), entry_yaml(id="other_one", chexpert="x"))
    with pytest.raises(KnowledgeError) as err:
        load_kb([folder])
    assert len(err.value.problems) == 2 and "1 more problem" in str(err.value)


def test_a_user_tree_naming_a_missing_entry_or_a_half_region_fails(tmp_path):
    folder = user_folder(
        tmp_path, tree={"version": 1, "regions": [{"id": "lungs", "findings": ["no_such_thing"]}]}
    )
    with pytest.raises(KnowledgeError, match="lists 'no_such_thing', which no entry defines"):
        load_kb([folder])
    folder = user_folder(tmp_path, tree={"version": 1, "regions": [{"id": "breast"}]})
    with pytest.raises(KnowledgeError, match="new region 'breast' needs name, description"):
        load_kb([folder])


def test_missing_or_empty_user_folders_are_errors(tmp_path):
    with pytest.raises(KnowledgeError, match="does not exist"):
        load_kb([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(KnowledgeError, match="neither findings/ nor tree.yaml"):
        load_kb([tmp_path / "empty"])


def test_configured_knowledge_includes_the_home_folder_when_present(tmp_path):
    from datakit.config import load_config

    assert len(load_configured()) == len(load_kb())  # no home folder yet
    home = user_home_dir()
    assert str(home).startswith(str(tmp_path))  # conftest points DATAKIT_HOME at tmp
    (home / "findings").mkdir(parents=True)
    (home / "findings" / "tree_in_bud.yaml").write_text(yaml.safe_dump(entry_yaml()))
    assert "tree_in_bud" in load_configured()
    assert "tree_in_bud" not in load_configured(load_config(overrides={"knowledge.use_home": False}))


# the installed wheel ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_wheel_carries_the_knowledge_and_loads_it(tmp_path, repo):
    out = tmp_path / "whl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(repo),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(out.glob("datakit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "datakit/_data/knowledge/tree.yaml" in names
    assert "datakit/_data/knowledge/findings/pleural_effusion.yaml" in names
    assert "datakit/_data/schemas/knowledge_entry.v1.json" in names
    assert "datakit/knowledge/kb.py" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import datakit, datakit.knowledge.kb as k; kb = k.load_kb(); "
        "print(datakit.__file__); print(k.data_path('knowledge')); print(len(kb))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    module, knowledge, count = done.stdout.split()
    assert module.startswith(str(site)) and knowledge == str(site / "datakit" / "_data" / "knowledge")
    assert int(count) == len(load_kb())
