"""The TRL export loaded the way its consumer loads it: ``datasets`` JSON with an Image feature, then TRL's own
vision collator over a tiny Qwen2.5-VL processor built offline (real chat template from the trl wheel)."""

from pathlib import Path

import pytest

import datakit.export
from tests.export.conftest import export_config, read_rows

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]


@pytest.fixture(scope="module")
def trl_export(_validated_base, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("load") / "run"
    shutil.copytree(_validated_base, run)
    datakit.export.run(run, export_config(formats=["trl"], image_paths="relative"))
    return run / "export" / "trl"


def _processor(texts: list[str], folder: Path):
    """A Qwen2.5-VL processor with a byte-level BPE tokenizer trained on ``texts`` and no video slot."""
    from importlib.resources import files

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, ProcessorMixin
    from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIAL,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    template = (files("trl") / "chat_templates" / "qwen2_5_vl.jinja").read_text()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=template)
    tokenizer.add_tokens(["<think>", "</think>"])

    class ImageOnlyProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    images = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=64 * 64 * 4, patch_size=14, merge_size=2,
                                      temporal_patch_size=2)
    return ImageOnlyProcessor(images, tokenizer, chat_template=template)


def _load(folder: Path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("json", data_files={s: str(folder / f"{s}.jsonl") for s in ("train", "val")})
    # relative paths are relative to the split file's folder
    ds = ds.map(lambda r: {"images": [str(folder / p) for p in r["images"]]})
    return ds.cast_column("images", datasets.List(datasets.Image()))


def test_datasets_loads_it_with_images(trl_export):
    ds = _load(trl_export)
    assert ds["train"].num_rows == len(read_rows(trl_export / "train.jsonl"))
    first = ds["train"][0]
    assert first["images"][0].size[0] > 0  # decoded PIL images
    assert [p["type"] for p in first["messages"][1]["content"]][-1] == "text"


def test_trl_collator_supervises_exactly_the_think_block_and_the_report(trl_export):
    pytest.importorskip("trl", reason="trl is an optional extra (pip install 'datakit[finetune]')")
    pytest.importorskip("torch")
    from importlib.resources import files

    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    rows = read_rows(trl_export / "train.jsonl")
    texts = [p["text"] for r in rows for m in r["messages"] for p in m["content"] if p["type"] == "text"]
    processor = _processor(texts, trl_export)
    training = (files("trl") / "chat_templates" / "qwen2_5_vl_training.jinja").read_text()
    collator = DataCollatorForVisionLanguageModeling(processor, assistant_only_loss=True, chat_template=training)
    ds = _load(trl_export)["train"]
    examples = [dict(ds[i]) for i in range(3)]
    assistants = [e["messages"][-1]["content"][0]["text"] for e in examples]
    batch = collator(examples)
    assert batch["pixel_values"].shape[0] > 0
    n_images = sum(len(e["images"]) for e in examples)
    assert batch["image_grid_thw"].shape[0] == n_images
    tok = processor.tokenizer
    for i, text in enumerate(assistants):
        supervised = batch["input_ids"][i][batch["labels"][i] != -100]
        decoded = tok.decode(supervised)
        assert decoded.startswith("<think>\nPerception:")
        assert decoded.removesuffix("\n").removesuffix("<|im_end|>") == text
        image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
        assert (batch["input_ids"][i] == image_pad).sum() > 0 and (supervised == image_pad).sum() == 0
