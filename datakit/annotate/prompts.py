"""The LLM teacher's prompt templates: which files make up a prompt, and the re-ask message.

The loader itself (sandboxed Jinja, strict undefined variables, template hashes) is :mod:`datakit.templates`,
shared with export. Templates live in the shipped ``prompts/`` folder or in a user folder with the same file
names (``teacher.prompts_dir``). Every trace records which templates made it and the hash of their text
(``template_sha``), so a changed prompt is visible in the data and re-asks the teacher only for what it changes
(the rendered text is part of the request key).
"""

from __future__ import annotations

from datakit import templates
from datakit.templates import RenderedPrompt

__all__ = ["MULTI", "REASK", "SCHEMA", "SINGLE", "PromptSet", "RenderedPrompt"]

SINGLE = ("annotate/system.j2", "annotate/user.j2")
MULTI = ("annotate/system.j2", "annotate/perception.j2", "annotate/reasoning.j2", "annotate/reflection.j2")
REASK = "annotate/reask.j2"
SCHEMA = "annotate/schema.j2"  # the schema as text, for endpoints that only promise json_object
_MAX_ERROR_CHARS = 2000  # of the parser's complaint, in a re-ask


class PromptSet(templates.PromptSet):
    """The teacher's templates of one folder (``teacher.prompts_dir``)."""

    def reask(self, error: str, *, schema_name: str) -> str:
        """The user message of a re-ask: ``annotate/reask.j2`` told why the reply could not be used."""
        if len(error) > _MAX_ERROR_CHARS:
            error = error[:_MAX_ERROR_CHARS] + " …"
        # sent without the newline render() ends every text with: re-asks cached before the template keep their keys
        return self.render(REASK, error=error, schema_name=schema_name).text.rstrip("\n")
