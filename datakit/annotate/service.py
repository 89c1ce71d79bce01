"""The LLM teacher's transport offered to other stages as the ``"openai"`` chat service (:mod:`datakit.chat`)."""

from __future__ import annotations

from typing import Any

from datakit.chat import SERVICES


class OpenAIService:
    """Prompt templates, requests and answers exactly as the LLM teacher makes and sends them."""

    def prompts(self, folder: str | None) -> Any:
        """The prompt templates of ``folder`` (datakit's own when None)."""
        from datakit.annotate.prompts import PromptSet

        return PromptSet(folder)

    def request(self, study_id: str, body: dict[str, Any], template: str, template_sha: str, schema_id: str) -> Any:
        """A :class:`~datakit.annotate.request.TeacherRequest` (its cache key is the hash of the body)."""
        from datakit.annotate.request import TeacherRequest

        return TeacherRequest(study_id, body, template, template_sha, schema_id)

    def response_format(self, schema: dict[str, Any], mode: str, name: str) -> dict[str, Any]:
        """The teacher's ``response_format`` for ``schema``."""
        from datakit.annotate.request import response_format_for

        return response_format_for(schema, mode, name=name)  # type: ignore[arg-type]

    def answer(self, requests: list[Any], *, config: Any, parse: Any, run: Any = None) -> list[Any]:
        """Answers from the cache (``config.cache_path``, else the run's cache.sqlite), then the endpoint."""
        from datakit.annotate.cache import Cache
        from datakit.annotate.engine import run_requests

        with Cache.for_run(run, config.cache_path) as cache:
            return run_requests(
                requests, cache=cache, config=config, parse=parse, transport="online", run=run, progress=False
            )


SERVICES.add("openai", OpenAIService())
