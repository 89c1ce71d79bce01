"""A tiny Qwen2.5-VL (0.2 M parameters) built offline: a BPE tokenizer, the real chat template, random weights.

Saved the way real checkpoints are (``processor_class`` in ``processor_config.json``), so tests load it through
datakit's own loader, the same path a downloaded Qwen2.5-VL takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]


def _tokenizer(texts: Iterable[str], template: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=template)
    fast.add_tokens(["<think>", "</think>"])
    return fast


def build_tiny_qwen25vl(dest: Path, texts: Iterable[str]) -> Path:
    """Write a tiny random Qwen2.5-VL checkpoint (model, tokenizer, image processor, template) to ``dest``."""
    import torch
    import trl
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    templates = Path(trl.__file__).parent / "chat_templates"
    template = (templates / "qwen2_5_vl.jinja").read_text(encoding="utf-8")
    tok = _tokenizer([*texts, *SPECIAL], template)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
            # a wide init: with 0.02 the frozen random lm_head cannot give peaked logits and LoRA-only training stalls
            "initializer_range": 0.2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]},
            "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
            "fullatt_block_indexes": [1], "initializer_range": 0.2,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    images = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=64 * 64 * 4, patch_size=14, merge_size=2,
                                      temporal_patch_size=2)
    images.save_pretrained(dest)
    (dest / "chat_template.jinja").write_text(template, encoding="utf-8")
    # real checkpoints name their processor class; without torchvision AutoProcessor then fails on the video slot
    cfg_path = dest / "processor_config.json"
    proc = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    proc["processor_class"] = "Qwen2_5_VLProcessor"
    cfg_path.write_text(json.dumps(proc, indent=2))
    pre = dest / "preprocessor_config.json"
    data = json.loads(pre.read_text())
    data["processor_class"] = "Qwen2_5_VLProcessor"
    pre.write_text(json.dumps(data, indent=2))
    return dest


def build_tiny_idefics3(dest: Path, texts: Iterable[str]) -> Path:
    """Write a tiny random Idefics3 (the SmolVLM architecture) with its stock processor and TRL's template."""
    import torch
    import trl
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    template = (Path(trl.__file__).parent / "chat_templates" / "idefics3.jinja").read_text(encoding="utf-8")
    extra = ["<|begin_of_text|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
             *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))]
    tok = _tokenizer([*texts, *SPECIAL], template)
    tok.add_special_tokens({"additional_special_tokens": extra})
    tok.eos_token = "<end_of_utterance>"
    ids = {t: tok.convert_tokens_to_ids(t) for t in extra}
    config = Idefics3Config(
        text_config={"model_type": "llama", "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "initializer_range": 0.2, "pad_token_id": tok.pad_token_id,
                     "eos_token_id": ids["<end_of_utterance>"], "bos_token_id": ids["<|begin_of_text|>"]},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 28, "patch_size": 14},
        scale_factor=2, image_token_id=ids["<image>"], pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    model.generation_config.pad_token_id = tok.pad_token_id
    images = Idefics3ImageProcessorPil(size={"longest_edge": 56}, max_image_size={"longest_edge": 28},
                                      do_image_splitting=False)
    processor = Idefics3Processor(image_processor=images, tokenizer=tok, image_seq_len=1, chat_template=template)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest
