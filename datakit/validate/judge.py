"""The LLM judge: an OpenAI-compatible model lists what a trace says that its report does not support.

Off by default (``validate.llm_judge.enabled``). Each trace becomes one rendered chat request
(the prompt from ``prompts/validate/judge.j2``, the judge's
JSON Schema as structured output) sent through the LLM teacher's transport, which the annotate stage offers as
the ``"openai"`` chat service (:mod:`datakit.chat`: cache first, retries, limits, re-asks), stored in the same
``cache.sqlite`` under the same key rule, so a re-run asks nothing. The answer is
``{"problems": [{"kind": "unsupported" | "contradicted", "statement": …, "reason": …}]}``; an answer that is not
that is re-asked with what was wrong, and still wrong it becomes a ``judge_failed`` problem, never a crash.
"""

from __future__ import annotations

import json
from typing import Any

from datakit.config import LlmJudgeConfig, TeacherConfig
from datakit.errors import ConfigError

SCHEMA_ID = "datakit.judge.v1"
KINDS = ("unsupported", "contradicted")
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": list(KINDS)},
                    "statement": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["kind", "statement", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["problems"],
    "additionalProperties": False,
}
SYSTEM = (
    "You review training data for chest X-ray report generation. You are given a model's reasoning trace and the "
    "study's final radiology report. List every statement of the trace that the report does not support "
    "(unsupported) or that the report contradicts (contradicted). Answer with JSON only."
)


def transport_config(cfg: LlmJudgeConfig) -> TeacherConfig:
    """The LLM teacher's transport settings for the judge's endpoint."""
    if not cfg.model:
        raise ConfigError("the LLM judge needs a model", hint="set validate.llm_judge.model (and base_url)")
    return TeacherConfig(
        kind="llm",
        model=cfg.model,
        base_url=cfg.base_url,
        api_key_env=cfg.api_key_env,
        max_concurrency=cfg.max_concurrency,
        max_requests_per_minute=cfg.max_requests_per_minute,
        max_retries=cfg.max_retries,
        max_reasks=cfg.max_reasks,
        request_timeout_s=cfg.request_timeout_s,
        temperature=cfg.temperature,
        max_output_tokens=cfg.max_output_tokens,
        structured_output=cfg.structured_output,
        cache_path=cfg.cache_path,
    )


def parse_answer(text: str) -> list[dict[str, str]]:
    """The judge's problems; ``ValueError`` saying what is wrong when the answer is not the judge's JSON."""
    try:
        obj = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"the answer is not JSON ({err})") from err
    if not isinstance(obj, dict) or not isinstance(obj.get("problems"), list):
        raise ValueError('the answer must be an object with a list "problems"')
    out = []
    for i, p in enumerate(obj["problems"]):
        if not isinstance(p, dict):
            raise ValueError(f"problems[{i}] is not an object")
        kind, statement, reason = p.get("kind"), p.get("statement"), p.get("reason", "")
        if kind not in KINDS:
            raise ValueError(f"problems[{i}].kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError(f"problems[{i}].statement must be a non-empty string")
        out.append({"kind": kind, "statement": statement.strip(), "reason": str(reason or "").strip()})
    return out


class Judge:
    """Builds the judge's requests and has the ``"openai"`` chat service answer them."""

    def __init__(self, cfg: LlmJudgeConfig) -> None:
        from datakit.chat import SERVICES

        self.cfg = cfg
        self.tc = transport_config(cfg)
        self.service = SERVICES.get("openai")
        self.prompts = self.service.prompts(cfg.prompts_dir)
        self.template_sha = self.prompts.sha(cfg.prompt)

    def request(self, study_id: str, think: str, report: str) -> Any:
        """The rendered request for one trace."""
        user = self.prompts.render(self.cfg.prompt, think=think, report=report).text
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "response_format": self.service.response_format(
                JUDGE_SCHEMA, self.cfg.structured_output, "datakit_judge_v1"
            ),
            "max_completion_tokens": self.cfg.max_output_tokens,
            **({"temperature": self.cfg.temperature} if self.cfg.temperature is not None else {}),
        }
        return self.service.request(study_id, body, self.cfg.prompt, self.template_sha, SCHEMA_ID)

    def ask(self, items: list[tuple[str, str, str]], *, run: Any = None) -> list[Any]:
        """(study_id, think, report) → one result each, in order (``ok``, ``parsed``, ``error_code``, ``cached``)."""
        requests = [self.request(*it) for it in items]
        if not requests:
            return []
        if run is None and not self.cfg.cache_path:
            raise ConfigError(
                "the LLM judge needs a cache: validate a run directory, or set validate.llm_judge.cache_path"
            )
        return self.service.answer(requests, config=self.tc, parse=parse_answer, run=run)
