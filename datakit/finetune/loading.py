"""Loading a vision-language model and its processor from a local folder (or the local Hugging Face cache).

Without torchvision, transformers 5.x cannot build video processors, so ``AutoProcessor`` fails for processors with a
video slot (Qwen2-VL, Qwen2.5-VL, Qwen3-VL). The fallback builds the same processor class without that slot, from
the checkpoint's image processor, tokenizer and chat template; images work unchanged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.finetune.errors import ModelLoadError, NotAVisionLanguageModel

# LoRA stays off the vision side: the tower (and projector) keep their pretrained features (TRL's CLI cannot exclude)
EXCLUDE_BY_TYPE = {
    "qwen2_vl": r".*visual.*",
    "qwen2_5_vl": r".*visual.*",
    "qwen3_vl": r".*visual.*",
    "idefics2": r".*vision.*",
    "idefics3": r".*vision.*",
    "smolvlm": r".*vision.*",
    "llava": r".*(vision_tower|multi_modal_projector).*",
    "llava_next": r".*(vision_tower|multi_modal_projector).*",
}
EXCLUDE_DEFAULT = r".*(visual|vision|multi_modal_projector|mm_projector).*"
# Files that make up a processor: copied from the base model next to the adapter and the merged model.
PROCESSOR_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json", "preprocessor_config.json",
    "processor_config.json", "video_preprocessor_config.json",
)


@dataclass
class Loaded:
    """A model folder resolved and its processor loaded, with what the loader had to do."""

    path: Path
    model_type: str
    processor: Any
    notes: list[str] = field(default_factory=list)


def resolve_model(name: str | Path) -> Path:
    """A local model folder: the path itself, or a hub id already in the local cache (never downloaded)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{path} is a file, not a model folder", hint="pass the folder with config.json")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(name), local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError) as err:
        raise ModelLoadError(
            f"model {name} is neither a local folder nor in the local Hugging Face cache",
            hint=f"datakit never downloads models: fetch it first (`hf download {name}`) and pass its folder",
        ) from err


def model_type(path: Path) -> str:
    """The checkpoint's ``model_type``; refuses models that are not image-text-to-text (vision-language)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json", hint="pass the folder of a transformers checkpoint")
    try:
        config = AutoConfig.from_pretrained(path)
    except (ValueError, KeyError, OSError) as err:
        raise ModelLoadError(f"cannot read the model config in {path}: {err}",
                             hint="a newer transformers may know this model type") from err
    kind = config.model_type
    if kind not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise NotAVisionLanguageModel(
            f"{path} is a {kind} model, not a vision-language model",
            hint="pass an image-text-to-text checkpoint such as Qwen2.5-VL-3B-Instruct, SmolVLM or LLaVA; the "
            "export's rows carry images",
        )
    return kind


def _processor_class_name(path: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        f = path / name
        if f.is_file():
            cls = json.loads(f.read_text(encoding="utf-8")).get("processor_class")
            if cls:
                return cls
    return None


def _chat_template(path: Path, tokenizer: Any) -> str | None:
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    if (path / "chat_template.json").is_file():
        return json.loads((path / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    return getattr(tokenizer, "chat_template", None)


def _image_only(path: Path, image_kwargs: dict[str, Any]) -> Any:
    """The checkpoint's processor class without its video slot (``ProcessorMixin`` reads slots off ``__init__``)."""
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    name = _processor_class_name(path)
    parent = getattr(transformers, name, None) if name else None
    if parent is None:
        raise ModelLoadError(f"{path} names no processor class datakit can rebuild ({name})",
                             hint="install torchvision matching your torch, so AutoProcessor can load it")

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        parent.__init__(self, image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                        chat_template=chat_template, **kwargs)

    cls = type(f"{parent.__name__}ImageOnly", (parent,), {"__init__": __init__, "__module__": __name__})
    tokenizer = AutoTokenizer.from_pretrained(path)
    images = AutoImageProcessor.from_pretrained(path, **image_kwargs)
    return cls(image_processor=images, tokenizer=tokenizer, chat_template=_chat_template(path, tokenizer))


def _pixel_budget(processor: Any, max_pixels: int | None, min_pixels: int | None) -> str | None:
    """Apply the per-image pixel budget where the image processor has one (Qwen-VL); else say it is ignored."""
    if max_pixels is None and min_pixels is None:
        return None
    ip = processor.image_processor
    size = getattr(ip, "size", None)
    if size is None or getattr(size, "longest_edge", None) is None or getattr(size, "shortest_edge", None) is None:
        return f"--max-pixels / --min-pixels do not apply to {type(ip).__name__}; its own size settings are used"
    if not hasattr(ip, "merge_size"):  # longest/shortest edge are pixel counts only in the Qwen-VL processors
        return f"--max-pixels / --min-pixels do not apply to {type(ip).__name__}; its own size settings are used"
    longest = max_pixels if max_pixels is not None else size.longest_edge
    shortest = min_pixels if min_pixels is not None else min(size.shortest_edge, longest)
    ip.size = {"shortest_edge": shortest, "longest_edge": longest}
    return None


def load_processor(path: Path, *, max_pixels: int | None = None, min_pixels: int | None = None,
                   kind: str | None = None) -> Loaded:
    """The processor of a folder; the image-only fallback when the video slot cannot load (said in notes).

    ``kind`` is the model type when ``path`` holds only processor files (an adapter folder): else it is read and
    checked from the folder's config.json.
    """
    from transformers import AutoProcessor

    kind = kind or model_type(path)
    notes: list[str] = []
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ImportError, ValueError, AttributeError) as err:
        if "video" not in str(err).lower() and "torchvision" not in str(err).lower():
            raise ModelLoadError(f"cannot load the processor of {path}: {err}",
                                 hint="check that the folder holds the tokenizer and preprocessor files") from err
        processor = _image_only(path, {})
        notes.append(
            f"the {type(processor).__mro__[1].__name__} video processor needs torchvision, which is not installed: "
            "loaded an image-only processor instead (images work the same; videos are not supported)"
        )
    if not hasattr(processor, "image_processor"):
        raise NotAVisionLanguageModel(f"the processor of {path} has no image processor",
                                      hint="pass a vision-language checkpoint")
    note = _pixel_budget(processor, max_pixels, min_pixels)
    if note:
        notes.append(note)
    return Loaded(path=path, model_type=kind, processor=processor, notes=notes)


def load_model(path: Path, *, dtype: Any, attn_implementation: str, device: str | None = None) -> Any:
    """The image-text-to-text model of a folder, in ``dtype``, with the attention implementation asked for."""
    from transformers import AutoModelForImageTextToText

    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, attn_implementation=attn_implementation)
    except ImportError as err:  # flash_attention_2 without flash-attn, for one
        raise ModelLoadError(f"cannot load {path} with attention {attn_implementation!r}: {err}",
                             hint="use attn_implementation = 'sdpa' (the default)") from err
    return model.to(device) if device else model


def lora_exclude(kind: str) -> str:
    """The regex of modules LoRA leaves alone for this model type: the vision tower and projector."""
    return EXCLUDE_BY_TYPE.get(kind, EXCLUDE_DEFAULT)


def copy_processor_files(base: Path, dest: Path) -> list[str]:
    """Copy the base model's processor, tokenizer and chat template files into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in PROCESSOR_FILES:
        if (base / name).is_file():
            shutil.copyfile(base / name, dest / name)
            copied.append(name)
    return copied
