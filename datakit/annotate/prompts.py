"""The LLM teacher's prompt templates: which files make up a prompt (the loader is :mod:`datakit.templates`).

Templates live in the shipped ``prompts/`` folder or in a user folder with the same file names
(``teacher.prompts_dir``). Every trace records which templates made it and the hash of their text
(``template_sha``), so a changed prompt is visible in the data and re-asks the teacher only for what it changes
(the rendered text is part of the request key).
"""

from __future__ import annotations

from datakit.templates import PromptSet, RenderedPrompt

__all__ = ["MULTI", "REASK", "SCHEMA", "SINGLE", "PromptSet", "RenderedPrompt"]

SINGLE = ("annotate/system.j2", "annotate/user.j2")
MULTI = ("annotate/system.j2", "annotate/perception.j2", "annotate/reasoning.j2", "annotate/reflection.j2")
REASK = "annotate/reask.j2"
SCHEMA = "annotate/schema.j2"  # the schema as text, for endpoints that only promise json_object
