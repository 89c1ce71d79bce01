"""datakit.toml as one strict pydantic model: load, resolve, write the resolved copy.

One resolution serves the CLI and the Python API (:func:`resolve_config`): command-line flag > ``DATAKIT_*``
environment variable > datakit.toml > default, built on pydantic-settings (its init, environment and TOML
sources, in that order). Environment variables name a dotted path with ``__`` between parts:
``DATAKIT_INGEST__IMAGES__MAX_SIZE=512``; lists and tables are written as JSON. A bad value is reported under its
key *and* where it came from (flag, environment variable or file). Only the *name* of an API key's environment
variable is ever stored, never the key.
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from datakit.errors import ConfigError
from datakit.hashing import content_hash

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    """How studies get their train/val/test split."""

    # "auto": the source's official split where it has one, else a patient-level hash split.
    strategy: Literal["auto", "official", "patient"] = "auto"
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> SplitConfig:
        if any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1.0) > 1e-6:
            raise ValueError(f"split ratios must be >= 0 and sum to 1, got {self.ratios}")
        return self


class ImageConfig(_Strict):
    """DICOM/JPG/PNG → 8-bit PNG for a VLM."""

    convert: bool = True
    max_size: int = Field(1024, ge=32, description="longest side in pixels; the aspect ratio is kept")
    # The MIMIC-CXR-JPG convention: min-max to 8 bit, invert MONOCHROME1, histogram-equalise; no VOI LUT.
    voi_lut: bool = False
    window: tuple[float, float] | None = Field(None, description="(center, width) overriding the file's window")
    equalize: bool = True
    workers: int | None = Field(None, ge=1, description="processes; default: all cores")


class IngestConfig(_Strict):
    """What ``datakit ingest`` reads and how."""

    format: str | None = None
    limit: int | None = Field(None, ge=1)
    label_source: Literal["chexpert", "negbio"] = "chexpert"
    workers: int | None = Field(None, ge=1)
    split: SplitConfig = SplitConfig()
    images: ImageConfig = ImageConfig()


class KnowledgeConfig(_Strict):
    """The knowledge base and retrieval."""

    paths: list[str] = Field(default_factory=list, description="user knowledge folders; extend/override shipped")
    use_home: bool = Field(True, description="also load $DATAKIT_HOME/knowledge (where `knowledge import` writes)")
    top_k: int = Field(5, ge=1, description="BM25 hits kept per study")
    max_hits: int = Field(12, ge=1, description="hits kept per study after label, tree and BM25 hits are merged")


class PriceConfig(_Strict):
    """What one model costs, in USD per million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class TeacherConfig(_Strict):
    """Who writes the traces and how."""

    kind: Literal["offline", "llm"] = "offline"
    seed: int = 0
    # offline teacher: controlled errors injected into the draft perception, then found and corrected
    # A minority of traces teach correcting a wrong first look; the rest teach re-checking a right one.
    error_rate: float = Field(0.3, ge=0, le=1, description="share of studies whose draft gets an injected error")
    error_kinds: list[Literal["missed", "hallucinated", "laterality", "severity"]] = Field(
        default_factory=lambda: ["missed", "hallucinated", "laterality", "severity"]
    )
    workers: int | None = Field(None, ge=1, description="offline teacher processes; default: all cores")
    # llm teacher
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = Field(16, ge=1)
    transport: Literal["online", "batch"] = "online"
    http_client: Literal["datakit", "openai"] = Field(
        "datakit", description="chat completions through datakit's lean HTTP/1.1 client, or the openai SDK"
    )
    ca_bundle: str | None = Field(
        None, description="PEM file (or folder) of the CAs that sign the endpoint's TLS certificate; default: "
        "SSL_CERT_FILE, REQUESTS_CA_BUNDLE, else the system's"
    )
    prompt_mode: Literal["single", "multi"] = Field("single", description="one call per trace, or three stages")
    prompts_dir: str | None = Field(None, description="your own prompt templates; default: datakit's")
    temperature: float | None = Field(0.2, ge=0, le=2)
    max_output_tokens: int = Field(4096, ge=1)
    image_max_side: int = Field(768, ge=64, description="images are sent downscaled to this longest side")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="more request fields, e.g. for vLLM")
    # transport of the llm teacher (datakit/annotate/: client.py, limits.py, batch.py, cache.py)
    max_requests_per_minute: int | None = Field(None, ge=1, description="RPM limit; none: unlimited")
    max_tokens_per_minute: int | None = Field(None, ge=1, description="TPM limit (input + max output)")
    max_retries: int = Field(6, ge=0, description="retries per request: 429, 5xx, timeouts, lost connections")
    request_timeout_s: float = Field(600.0, gt=0, description="per request; long reasoning is slow")
    connect_timeout_s: float = Field(10.0, gt=0)
    backoff_initial_s: float = Field(1.0, gt=0, description="first retry delay; doubles, with jitter")
    backoff_max_s: float = Field(60.0, gt=0)
    max_retry_after_s: float = Field(600.0, gt=0, description="cap on a server's retry-after")
    max_reasks: int = Field(2, ge=0, description="re-asks after an unparseable reply")
    bad_finish_reasons: list[str] = Field(default_factory=lambda: ["length", "content_filter"])
    structured_output: Literal["json_schema", "json_object"] = "json_schema"
    cache_path: str | None = Field(None, description="shared cache; default: the run's cache.sqlite")
    prices: dict[str, PriceConfig] = Field(default_factory=dict, description="model → USD per million tokens")
    image_input_tokens: int = Field(765, ge=0, description="tokens per image (OpenAI, high detail, 1024²)")
    expected_output_tokens: int = Field(1000, ge=1, description="output estimate when nothing is cached yet")
    batch_poll_s: float = Field(15.0, gt=0, description="Batch API poll delay; grows to batch_poll_max_s")
    batch_poll_max_s: float = Field(300.0, gt=0)
    batch_max_requests: int = Field(50_000, ge=1, description="requests per batch (OpenAI's limit)")
    batch_max_mb: float = Field(190.0, gt=0, description="input file size per batch (OpenAI's limit is 200)")
    batch_price_factor: float = Field(0.5, ge=0, description="Batch API price relative to online")


# Wording that gives away a trace written from the report or the labels rather than from the image (issue #5).
DEFAULT_LEAKAGE_PHRASES = [
    "the report states", "the report says", "the report mentions", "the report describes",
    "the report notes", "the report indicates", "according to the report", "as stated in the report",
    "as described in the report", "as per the report", "per the report", "the provided report",
    "the given report", "the original report", "the reference report", "the radiologist's report",
    "the radiologist reported", "the findings section", "the impression section", "ground truth",
    "ground-truth", "according to the labels", "according to the label", "the labels say", "the label says",
    "the labels indicate", "the label indicates", "chexpert label", "positive label", "negative label",
    "uncertain label", "labelled as positive", "labeled as positive", "provided findings",
    "provided impression", "provided labels", "given findings", "given labels", "the findings provided",
    "the answer key",
]
# One study's images cannot show a prior study: think text that compares with one copied it from the report.
DEFAULT_PRIOR_PHRASES = [
    "compared with the prior", "compared to the prior", "compared with prior", "compared to prior",
    "since the prior", "from the prior", "on the prior", "prior study", "prior exam", "prior examination",
    "prior radiograph", "prior film", "previous study", "previous exam", "previous examination",
    "previous radiograph", "previous film", "interval change", "interval improvement", "interval worsening",
    "interval increase", "interval decrease", "unchanged from", "again seen", "again noted",
    "again demonstrated", "no longer seen", "new since",
]


class LlmJudgeConfig(_Strict):
    """The optional LLM-judge check (issue 15): an OpenAI-compatible model reads trace and report; off by default.

    Requests go through the LLM teacher's client and cache (``datakit/annotate/``), keyed the same way, so a
    re-run sends nothing.
    """

    enabled: bool = False
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    prompt: str = Field("validate/judge.j2", description="template under prompts_dir (default: datakit's prompts)")
    prompts_dir: str | None = None
    temperature: float | None = Field(0.0, ge=0, le=2)
    max_output_tokens: int = Field(1024, ge=1)
    max_concurrency: int = Field(8, ge=1)
    max_requests_per_minute: int | None = Field(None, ge=1)
    max_retries: int = Field(4, ge=0)
    max_reasks: int = Field(1, ge=0, description="re-asks after an answer that is not the judge's JSON")
    request_timeout_s: float = Field(120.0, gt=0)
    structured_output: Literal["json_schema", "json_object"] = "json_schema"
    cache_path: str | None = Field(None, description="default: the run's cache.sqlite")
    max_findings: int = Field(20, ge=1, description="problems kept per trace")


class ValidateConfig(_Strict):
    """What ``datakit validate`` checks and how strictly (issue #5)."""

    min_pass_rate: float | None = Field(None, ge=0, le=1, description="exit 4 when fewer pass than this")
    skip: list[str] = Field(default_factory=list, description="checks not to run, by name")
    # "check", "code" or "check.code" → error | warning | off; the most specific key wins
    severity: dict[str, Literal["error", "warning", "off"]] = Field(default_factory=dict)
    plugins: list[str] = Field(default_factory=list, description="modules or .py files that register checks")
    workers: int | None = Field(None, ge=1, description="processes (schema pass, labeler); default: all")
    examples: int = Field(2, ge=0, description="example failures per check in the summary")
    # clinical: what the labeler reads of the final report. "report": findings and impression; the labels
    # may come from a part of it (CheXpert labels MIMIC's impression), so the report may name
    # more than they do. "impression": the impression, else the findings, as CheXpert reads it; then a study
    # labelled No Finding whose impression reads positive is also a disagreement.
    label_text: Literal["report", "impression"] = "report"
    # leakage
    leakage_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_LEAKAGE_PHRASES))
    extra_leakage_phrases: list[str] = Field(default_factory=list, description="added to leakage_phrases")
    prior_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_PRIOR_PHRASES))
    # copies_report: a report sentence of at least this many words that is also a sentence of the think text
    copied_sentence_words: int = Field(8, ge=3)
    # form
    think_tags: tuple[str, str] = ("<think>", "</think>")
    min_think_chars: int = Field(200, ge=0)
    max_think_chars: int = Field(16000, ge=1)
    min_report_chars: int = Field(15, ge=0)
    max_report_chars: int = Field(4000, ge=1)
    min_ascii_letter_share: float = Field(0.9, ge=0, le=1, description="English heuristic: A-Z among letters")
    min_english_word_share: float = Field(0.6, ge=0, le=1, description="English among common function words")
    # diversity: near-identical think texts (MinHash over sentences, LSH bands)
    diversity_min_cluster_size: int = Field(10, ge=2, description="flag clusters at least this large ...")
    diversity_min_cluster_share: float = Field(0.01, ge=0, le=1, description="... and this share of all")
    diversity_bands: int = Field(6, ge=1)
    diversity_rows: int = Field(8, ge=1, description="band width; threshold ~ (1/bands)^(1/rows)")
    # the optional LLM judge (checks/judge.py)
    llm_judge: LlmJudgeConfig = Field(default_factory=LlmJudgeConfig)

    @model_validator(mode="after")
    def _bounds(self) -> ValidateConfig:
        if self.min_think_chars > self.max_think_chars or self.min_report_chars > self.max_report_chars:
            raise ValueError("validate: a min_*_chars bound is above its max_*_chars")
        if not all(self.think_tags) or self.think_tags[0] == self.think_tags[1]:
            raise ValueError("validate.think_tags must be two different, non-empty tags")
        return self


EXPORT_FORMATS = ("trl", "llamafactory", "swift", "qwen-vl", "llava")


class ExportConfig(_Strict):
    """What ``datakit export`` writes and how (issue #16)."""

    formats: list[str] = Field(default_factory=lambda: list(EXPORT_FORMATS), description="exporters by name")
    # think: <think>…</think>; thought: <|begin_of_thought|>…<|end_of_thought|>; reasoning_content: a separate
    # field (TRL); none: the report alone, the plain image → report direct-SFT baseline
    tag_style: Literal["think", "thought", "reasoning_content", "none"] = "think"
    image_mode: Literal["reference", "hardlink", "copy"] = Field(
        "reference", description="images referenced in place, or hard-linked / copied under <format>/images/"
    )
    image_paths: Literal["absolute", "relative"] = Field(
        "absolute", description="relative: to the split file's folder (ms-swift always gets absolute paths)"
    )
    max_images: int = Field(2, ge=1, description="images per study, frontal first (LLaVA always takes one)")
    include_flagged: bool = Field(True, description="keep traces whose validation only warned")
    system_prompt: bool = Field(True, description="write the system message where the format has one")
    prompts_dir: str | None = Field(None, description="your own prompts folder (export/system.j2, export/user.j2)")
    system_template: str = "export/system.j2"
    user_template: str = "export/user.j2"
    # keep: the report as written; remove: sentences about prior studies left out (one study's images cannot
    # show them)
    prior_sentences: Literal["keep", "remove"] = "keep"
    strict: bool = Field(False, description="an export check failing stops the export instead of quarantining")
    tokenizer: str | None = Field(None, description="tokenizer (local path or cached name) for the card's lengths")
    workers: int | None = Field(None, ge=1, description="processes; default: all cores")
    batch_size: int = Field(4096, ge=1, description="studies per batch: memory is bounded by a few batches")

    @model_validator(mode="after")
    def _known_formats(self) -> ExportConfig:
        if not self.formats:
            raise ValueError("export.formats is empty")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"export.formats names a format twice: {self.formats}")
        return self


# The section is called "validate" like its command; pydantic warns that the name shadows the deprecated
# BaseModel.validate classmethod, which datakit never calls (it uses model_validate).
warnings.filterwarnings(
    "ignore", message='Field name "validate" in "DatakitConfig" shadows', category=UserWarning
)


# The TOML file of the resolution under way (pydantic-settings asks for its sources through a classmethod).
_TOML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("datakit_toml_file", default=None)
ENV_PREFIX = "DATAKIT_"


class DatakitConfig(BaseSettings):
    """The whole configuration of a run."""

    model_config = SettingsConfigDict(
        extra="forbid",
        validate_assignment=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    source: str | None = None
    # the run folder `datakit build` writes; a relative path is relative to the config file's folder
    run: str | None = None
    ingest: IngestConfig = IngestConfig()
    knowledge: KnowledgeConfig = KnowledgeConfig()
    teacher: TeacherConfig = TeacherConfig()
    validate: ValidateConfig = ValidateConfig()
    export: ExportConfig = ExportConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init values) > environment > the TOML file being resolved; no .env or secret files."""
        toml = _TOML_FILE.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def fingerprint(self, *parts: str) -> str:
        """Hash of the given top-level sections (all when none are named)."""
        data = self.model_dump(mode="json")
        return content_hash({p: data.get(p) for p in parts} if parts else data)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def load_config(
    path: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    flag_names: dict[str, str] | None = None,
) -> DatakitConfig:
    """Resolve the configuration: ``overrides`` (dotted keys from flags) > environment > file > defaults.

    ``flag_names`` names the command-line flag of each dotted override (``{"teacher.kind": "--teacher"}``), so
    that a bad value is reported with where it came from.
    """
    text = ""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="check the --config path")
        text = path.read_text(encoding="utf-8")
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}", hint="fix the line it names, or start again "
                              "with `datakit init`") from err
    flags: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(flags, dotted, value)
    token = _TOML_FILE.set(path)
    try:
        return DatakitConfig(**flags)
    except ValidationError as err:
        raise _config_error(err, overrides, path, text, flag_names) from err
    finally:
        _TOML_FILE.reset(token)


def _config_error(err: ValidationError, overrides: dict[str, Any] | None, path: Path | None, text: str,
                  flag_names: dict[str, str] | None) -> ConfigError:
    """Every problem with its key, what is allowed, and where the value came from (flag, variable, file:line)."""
    from datakit.config_origin import describe_errors, origins

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    where = origins(path, text, dict(os.environ), given, flag_names)
    return ConfigError(
        f"invalid configuration: {describe_errors(err, where, DatakitConfig)}",
        hint="fix the value where it came from (README.md, 'Configuration', lists every key)",
    )


def resolve_config(
    run_config: Path | None,
    config: DatakitConfig | str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    flag_names: dict[str, str] | None = None,
) -> DatakitConfig:
    """The one resolution every stage uses.

    ``config`` if it is resolved already, else the file ``config`` names or the run's own ``datakit.toml``
    (``run_config``, when it exists), with the environment and then ``overrides`` (flags) on top.
    """
    if isinstance(config, DatakitConfig):
        if not overrides:
            return config
        data = config.model_dump(mode="json", exclude_none=True)
        for dotted, value in overrides.items():
            if value is not None:
                _set_dotted(data, dotted, value)
        try:  # model_validate reads no environment or file: the config was resolved already
            return DatakitConfig.model_validate(data)
        except ValidationError as err:
            raise _config_error(err, overrides, None, "", flag_names) from err
    if config is None and run_config is not None and Path(run_config).is_file():
        config = run_config
    return load_config(config, overrides=overrides, flag_names=flag_names)


def dump_config(config: DatakitConfig) -> str:
    """The resolved configuration as TOML, every default written out."""
    import tomli_w

    def _drop_none(obj: Any) -> Any:  # TOML has no null: an unset option is simply absent
        if isinstance(obj, dict):
            return {k: _drop_none(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, (list, tuple)):
            return [_drop_none(v) for v in obj]
        return obj

    return tomli_w.dumps(_drop_none(config.model_dump(mode="json")))
