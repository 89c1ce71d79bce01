"""Each export against its consumer's documented schema, field by field (the consumers are too heavy to install).

Sources: LLaMA-Factory ``data/README.md`` (sharegpt / "OpenAI Format", "Multimodal Dataset") and
``hparams/data_args.py`` (``media_dir`` defaults to ``dataset_dir``); ms-swift
``docs/source_en/Customization/Custom-dataset.md`` (standard keys, "Multimodal"); Qwen2.5-VL
``qwen-vl-finetune/qwenvl/data/data_processor.py`` (``_build_messages``) and its dataset registry; LLaVA
``docs/Finetune_Custom_Data.md`` and ``llava/train/train.py`` (``LazySupervisedDataset``, ``preprocess_multimodal``).
"""

import json
import os
import re
from pathlib import Path

import pytest

import datakit.export
from tests.export.conftest import export_config, read_rows

SPLITS = ("train", "val", "test")
SWIFT_KEYS = {"messages", "rejected_response", "label", "images", "videos", "audios", "tools", "objects"}


@pytest.fixture(scope="module")
def exported(_validated_base, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("schemas") / "run"
    shutil.copytree(_validated_base, run)
    datakit.export.run(run, export_config(image_paths="relative"))
    return run / "export"


def test_llamafactory_dataset_info_and_rows(exported):
    folder = exported / "llamafactory"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert sorted(info) == sorted(f"datakit_cxr_{s}" for s in SPLITS)
    for entry in info.values():
        assert set(entry) == {"file_name", "formatting", "columns", "tags"}
        assert entry["formatting"] == "sharegpt"
        assert entry["columns"] == {"messages": "messages", "images": "images"}
        tags = entry["tags"]
        assert tags == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                        "assistant_tag": "assistant", "system_tag": "system"}
        rows = read_rows(folder / entry["file_name"])  # file_name is relative to dataset_dir
        assert rows
        for row in rows:
            assert set(row) == {"messages", "images"}
            msgs = row["messages"]
            assert all(set(m) == {tags["role_tag"], tags["content_tag"]} for m in msgs)
            assert all(isinstance(m["content"], str) and m["content"] for m in msgs)
            if msgs[0]["role"] == tags["system_tag"]:  # the system prompt may open the list only
                msgs = msgs[1:]
            # user (human) turns in odd positions, assistant (gpt) in even ones
            assert [m["role"] for m in msgs] == [tags["user_tag"], tags["assistant_tag"]] * (len(msgs) // 2)
            assert isinstance(row["images"], list) and all(isinstance(p, str) for p in row["images"])
            assert sum(m["content"].count("<image>") for m in msgs) == len(row["images"])
            for p in row["images"]:  # relative to media_dir, which defaults to dataset_dir
                assert (folder / p).is_file()


def test_swift_rows(exported):
    for split in SPLITS:
        for row in read_rows(exported / "swift" / f"{split}.jsonl"):
            assert "messages" in row and set(row) <= SWIFT_KEYS
            roles = [m["role"] for m in row["messages"]]
            assert roles[0] in ("system", "user") and roles[-1] == "assistant"
            assert set(roles) <= {"system", "user", "assistant"}
            assert all(isinstance(m["content"], str) for m in row["messages"])
            assert all(os.path.isabs(p) and os.path.isfile(p) for p in row["images"])  # absolute preferred
            assert sum(m["content"].count("<image>") for m in row["messages"]) == len(row["images"])


def _qwen_build(item: dict, base: Path) -> list[dict]:
    """What Qwen's data processor does with one item (its ``_build_messages``), written here from the source."""
    images = item.get("image") or []
    images = [images] if isinstance(images, str) else list(images)
    pool = [str((base / img).resolve()) for img in images]
    messages = []
    for turn in item["conversations"]:
        role = "user" if turn["from"] == "human" else "assistant"
        if role == "user":
            content = []
            for seg in re.split(r"(<image>|<video>)", turn["value"]):
                if seg == "<image>":
                    if not pool:
                        raise ValueError("more <image> placeholders than images")
                    content.append({"type": "image", "image": pool.pop(0)})
                elif seg.strip():
                    content.append({"type": "text", "text": seg.strip()})
            messages.append({"role": role, "content": content})
        else:
            messages.append({"role": role, "content": [{"type": "text", "text": turn["value"]}]})
    if pool:
        raise ValueError(f"{len(pool)} image(s) unused")
    return messages


def test_qwenvl_rows_and_registry(exported):
    folder = exported / "qwen-vl"
    data_dict: dict = {}
    exec((folder / "data_registry.py").read_text(), {"data_dict": data_dict})  # what __init__.py would hold
    assert sorted(data_dict) == sorted(f"datakit_cxr_{s}" for s in SPLITS)
    for entry in data_dict.values():
        assert set(entry) == {"annotation_path", "data_path"}
        base = Path(entry["data_path"])
        for item in read_rows(Path(entry["annotation_path"])):
            assert [t["from"] for t in item["conversations"]] == ["human", "gpt"]  # no system turn
            messages = _qwen_build(item, base)
            assert all(Path(p["image"]).is_file() for p in messages[0]["content"] if p["type"] == "image")
            assert messages[1]["content"][0]["text"].startswith("<think>")


def test_llava_lists(exported):
    folder = exported / "llava"
    for split in SPLITS:
        text = (folder / f"{split}.json").read_text()
        items = json.loads(text)
        assert isinstance(items, list) and items
        for item in items:
            assert set(item) == {"id", "image", "conversations"}
            assert isinstance(item["image"], str) and os.path.isfile(os.path.join(folder, item["image"]))
            conv = item["conversations"]
            assert [t["from"] for t in conv] == ["human", "gpt"]
            # train.py moves <image> to the start of its turn, then a newline: already so
            first = conv[0]["value"]
            moved = ("<image>\n" + first.replace("<image>", "").strip()).strip()
            assert first == moved and sum(t["value"].count("<image>") for t in conv) == 1


def test_trl_rows_follow_the_contract(exported):
    for split in SPLITS:
        for row in read_rows(exported / "trl" / f"{split}.jsonl"):
            assert set(row) == {"study_id", "images", "messages"}
            assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
            for m in row["messages"]:
                for part in m["content"]:
                    assert part == {"type": "image"} or set(part) == {"type", "text"}
            user = row["messages"][1]["content"]
            assert sum(p == {"type": "image"} for p in user) == len(row["images"])
            assert user[-1]["type"] == "text"
            for p in row["images"]:
                assert not os.path.isabs(p) and (exported / "trl" / p).is_file()
