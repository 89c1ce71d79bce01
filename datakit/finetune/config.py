"""The fine-tune and predict settings: the ``[finetune]`` / ``[predict]`` sections of a TOML file, flags on top.

Precedence as for datakit.toml: flag > ``DATAKIT_FINETUNE__*`` / ``DATAKIT_PREDICT__*`` environment > file > default.
Defaults suit a Qwen2.5-VL-class model (3B/7B) with LoRA on one GPU.
"""

from __future__ import annotations

import contextvars
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from datakit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# The TOML section of the resolution under way (pydantic-settings asks for its sources through a classmethod).
_SECTION: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("datakit_finetune_section",
                                                                               default=None)


class _Settings(BaseSettings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init values) > environment > the TOML file's section; no .env or secret files."""
        return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=_SECTION.get() or {})


class FinetuneConfig(_Settings):
    """How ``datakit finetune`` trains: LoRA on the language model, loss on the assistant turn only."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True, env_prefix="DATAKIT_FINETUNE__",
                                      case_sensitive=False)

    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimiser steps; -1: run the epochs")
    batch_size: int = Field(1, ge=1, description="samples per device per step")
    grad_accum: int = Field(8, ge=1, description="steps accumulated per optimiser update")
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS))
    exclude_modules: str | None = Field(None, description="regex of modules kept out of LoRA; default by model type")
    max_pixels: int | None = Field(512 * 28 * 28, ge=28 * 28, description="pixel budget per image (Qwen-VL)")
    min_pixels: int | None = Field(None, ge=28 * 28)
    bf16: bool = Field(True, description="bf16 weights and autocast on CUDA; always off on CPU")
    gradient_checkpointing: bool = True
    attn_implementation: str = Field("sdpa", description="sdpa, eager, or flash_attention_2 (needs flash-attn)")
    chat_template_path: str | None = Field(None, description="a training template with {% generation %} markers")
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(100, ge=1)
    save_total_limit: int = Field(2, ge=1)
    seed: int = 0
    cpu: bool = Field(False, description="train on the CPU even where CUDA is available")
    resume: bool = Field(True, description="continue from the last checkpoint in OUT/checkpoints")
    merge: bool = Field(False, description="also write OUT/merged: the base model with the adapter merged in")


class PredictConfig(_Settings):
    """How ``datakit predict`` generates: greedy by default."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True, env_prefix="DATAKIT_PREDICT__",
                                      case_sensitive=False)

    split: str = "test"
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(1024, ge=1)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    num_beams: int = Field(1, ge=1)
    repetition_penalty: float = Field(1.0, gt=0)
    max_pixels: int | None = Field(None, ge=28 * 28, description="default: what the adapter was trained with")
    min_pixels: int | None = Field(None, ge=28 * 28)
    tags: Literal["auto", "think", "thought", "reasoning_content", "none"] = "auto"
    limit: int | None = Field(None, ge=1, description="predict only the first N studies")
    seed: int = 0
    cpu: bool = False
    bf16: bool = True


def _load(section: str, model: type[_Settings], path: str | Path | None, overrides: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="check the --config path")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8")).get(section, {})
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from err
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    token = _SECTION.set(data)
    try:
        return model(**flags)
    except ValidationError as err:
        problems = "; ".join(f"{section}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid configuration: {problems}", hint="see README.md, 'Fine-tuning'") from err
    finally:
        _SECTION.reset(token)


def load_finetune_config(path: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
    """The ``[finetune]`` settings: flags (``overrides``) > ``DATAKIT_FINETUNE__*`` > the file's section > defaults."""
    return _load("finetune", FinetuneConfig, path, overrides)


def load_predict_config(path: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> PredictConfig:
    """The ``[predict]`` settings: flags (``overrides``) > ``DATAKIT_PREDICT__*`` > the file's section > defaults."""
    return _load("predict", PredictConfig, path, overrides)
