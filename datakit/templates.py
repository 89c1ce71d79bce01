"""Jinja templates from a folder, rendered in a sandbox with strict undefined variables (annotate, export).

Templates live in the shipped ``prompts/`` folder or in a user folder with the same file names. A template that is
missing, has a syntax error, or uses a variable datakit does not pass is a :class:`~datakit.errors.TemplateError`
naming the template; nothing is rendered half-way. :meth:`PromptSet.sha` hashes the templates' text (and what they
include), so whatever is made from them can record it and be remade when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from datakit.errors import TemplateError
from datakit.hashing import content_hash
from datakit.resources import data_path


@dataclass(frozen=True)
class RenderedPrompt:
    """The text of one rendered template and where it came from."""

    template: str
    text: str


class PromptSet:
    """The templates of one folder; ``setting`` names the config key that chooses it (for hints)."""

    def __init__(self, folder: str | Path | None = None, *, setting: str = "teacher.prompts_dir") -> None:
        self.folder = Path(folder) if folder else data_path("prompts")
        self.setting = setting
        if not self.folder.is_dir():
            raise TemplateError(f"prompt folder {self.folder} does not exist", hint=f"check {setting}")
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(self.folder)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=False,
        )
        self._sha: dict[str, str] = {}

    def _missing(self, name: str) -> TemplateError:
        return TemplateError(f"template {name} is missing from {self.folder}",
                             hint="copy it from datakit's own prompts/ folder and edit it")

    def source(self, name: str) -> str:
        """The template's text."""
        path = self.folder / name
        if not path.is_file():
            raise self._missing(name)
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
        from jinja2 import meta

        try:
            ast = self.env.parse(self.source(name))
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(f"template {name} has a syntax error on line {err.lineno}: {err.message}") from err
        return [t for t in meta.find_referenced_templates(ast) if t]

    def template(self, name: str) -> jinja2.Template:
        """The compiled template (render it many times with :meth:`render_with`)."""
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as err:
            raise self._missing(err.name or name) from err
        except jinja2.TemplateSyntaxError as err:
            where = f"template {err.name or name} has a syntax error on line {err.lineno}"
            raise TemplateError(f"{where}: {err.message}") from err

    def render(self, name: str, **context: Any) -> RenderedPrompt:
        """Render one template; any problem is a TemplateError that names it."""
        return RenderedPrompt(name, self.render_with(self.template(name), name, **context))

    @staticmethod
    def render_with(template: jinja2.Template, name: str, **context: Any) -> str:
        """Render a compiled template: the text stripped, with one final newline."""
        try:
            text = template.render(**context)
        except jinja2.TemplateNotFound as err:
            raise TemplateError(f"template {err.name} (included by {name}) is missing",
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
        return text.strip() + "\n"
