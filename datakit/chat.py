"""Chat-completion services that a stage may use without importing another stage (issue 15: the LLM judge).

The annotate stage owns the OpenAI-compatible client, its engine and its cache; it offers them here as the
``"openai"`` service (``datakit/annotate/service.py``), and the registry imports that module on first lookup,
as it does for every built-in plug-in. Validate's LLM judge asks for the service by name, so the two stages stay
apart and both send through the same transport and cache, keyed the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

from datakit.registry import Registry


class ChatService(Protocol):
    """What a stage gets: prompt templates, rendered requests, and answers (cache first, then the endpoint)."""

    def prompts(self, folder: str | None) -> Any:
        """The prompt templates of ``folder`` (datakit's own when None)."""

    def request(self, study_id: str, body: dict[str, Any], template: str, template_sha: str, schema_id: str) -> Any:
        """A fully rendered request, keyed by the hash of its body."""

    def response_format(self, schema: dict[str, Any], mode: str, name: str) -> dict[str, Any]:
        """The ``response_format`` that asks for ``schema`` (strict JSON Schema, or JSON mode)."""

    def answer(self, requests: list[Any], *, config: Any, parse: Any, run: Any = None) -> list[Any]:
        """One result per request, in order; ``parse`` raising ValueError re-asks."""


SERVICES: Registry[ChatService] = Registry("chat service", builtin=("datakit.annotate.service",))
