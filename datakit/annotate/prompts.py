"""Jinja prompt templates, rendered in a sandbox with strict undefined variables.

Templates live in the shipped ``prompts/`` folder or in a user folder with the same file names
(``teacher.prompts_dir``). A template that is missing, has a syntax error, or uses a variable datakit does not
pass is a :class:`~datakit.errors.TemplateError` naming the template; nothing is rendered half-way. Every trace
records which templates made it and the hash of their text (``template_sha``), so a changed prompt is visible in
the data and re-asks the teacher only for what it changes (the rendered text is part of the request key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from datakit.errors import TemplateError
from datakit.hashing import content_hash
from datakit.resources import data_path

SINGLE = ("annotate/system.j2", "annotate/user.j2")
MULTI = ("annotate/system.j2", "annotate/perception.j2", "annotate/reasoning.j2", "annotate/reflection.j2")
REASK = "annotate/reask.j2"
SCHEMA = "annotate/schema.j2"  # the schema as text, for endpoints that only promise json_object
_MAX_ERROR_CHARS = 2000  # of the parser's complaint, in a re-ask


@dataclass(frozen=True)
class RenderedPrompt:
    """The text of one rendered template and where it came from."""

    template: str
    text: str


class PromptSet:
    """The templates of one folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else data_path("prompts")
        if not self.folder.is_dir():
            raise TemplateError(f"prompt folder {self.folder} does not exist", hint="check teacher.prompts_dir")
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(self.folder)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=False,
        )
        self._sha: dict[str, str] = {}

    def source(self, name: str) -> str:
        """The template's text."""
        path = self.folder / name
        if not path.is_file():
            raise TemplateError(f"template {name} is missing from {self.folder}",
                                hint="copy it from datakit's own prompts/ folder and edit it")
        return path.read_text(encoding="utf-8")

    def sha(self, *names: str) -> str:
        """Hash of the templates' texts (and of every template they include)."""
        key = "|".join(names)
        if key not in self._sha:
            texts = {}
            for name in names:
                texts[name] = self.source(name)
                for included in self._includes(name):
                    texts[included] = self.source(included)
            self._sha[key] = content_hash(texts)
        return self._sha[key]

    def _includes(self, name: str) -> list[str]:
        try:
            ast = self.env.parse(self.source(name))
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(f"template {name} has a syntax error on line {err.lineno}: {err.message}") from err
        return [t for t in meta.find_referenced_templates(ast) if t]

    def render(self, name: str, **context: Any) -> RenderedPrompt:
        """Render one template; any problem is a TemplateError that names it."""
        try:
            template = self.env.get_template(name)
            text = template.render(**context)
        except jinja2.TemplateNotFound as err:
            raise TemplateError(f"template {err.name} is missing from {self.folder}",
                                hint="copy it from datakit's own prompts/ folder and edit it") from err
        except jinja2.UndefinedError as err:
            raise TemplateError(
                f"template {name} uses a variable datakit does not pass: {err.message}",
                hint="see the comment at the top of the template for the variables it may use",
            ) from err
        except jinja2.exceptions.SecurityError as err:
            raise TemplateError(f"template {name} tried something the sandbox forbids: {err}") from err
        except jinja2.TemplateSyntaxError as err:
            where = f"template {err.name or name} has a syntax error on line {err.lineno}"
            raise TemplateError(f"{where}: {err.message}") from err
        return RenderedPrompt(name, text.strip() + "\n")

    def reask(self, error: str, *, schema_name: str) -> str:
        """The user message of a re-ask: ``annotate/reask.j2`` told why the reply could not be used."""
        if len(error) > _MAX_ERROR_CHARS:
            error = error[:_MAX_ERROR_CHARS] + " …"
        # sent without the newline render() ends every text with: re-asks cached before the template keep their keys
        return self.render(REASK, error=error, schema_name=schema_name).text.rstrip("\n")
