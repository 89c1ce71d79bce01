"""The one way datakit reads a YAML file checked against a JSON Schema, and the one wording of what is wrong.

Knowledge entries, the perception tree and the labeler lexicon are read this way.

Every problem names the file, the entry (when the file holds one) and the field, then says what is wrong::

    knowledge/findings/effusion.yaml: entry 'pleural_effusion', field 'synonyms': should be a list, got str 'x'

All problems of a load are collected and raised together, so a user fixes them in one pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from datakit.errors import DatakitError
from datakit.resources import schema_path


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, refusing a key given twice in one mapping (YAML would keep the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice in one mapping (the first would be lost)",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
_TYPE_WORDS = {
    "array": "a list",
    "string": "text",
    "boolean": "true or false",
    "object": "a mapping",
    "null": "null",
    "integer": "a whole number",
    "number": "a number",
}


@dataclass
class Problem:
    """One thing wrong with one document (or one entry of it)."""

    path: str
    entry_id: str | None
    field: str | None
    message: str
    hint: str | None = None
    kind: str | None = None  # the JSON-Schema keyword that failed (type, enum, required, …), when one did

    def __str__(self) -> str:
        where = f"{self.path}: entry {self.entry_id!r}" if self.entry_id else f"{self.path}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


def problems_error(problems: list[Problem], cls: type[DatakitError], hint: str) -> DatakitError:
    """One error for all problems found; the first one's path, entry and field are attributes."""
    first = problems[0]
    message = str(first)
    if len(problems) > 1:
        rest = "\n".join(f"  - {p}" for p in problems[1:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        message += f"\n{len(problems) - 1} more problem(s):\n{rest}{more}"
    err = cls(message, hint=first.hint or hint)
    err.problems = problems  # type: ignore[attr-defined]
    err.path, err.entry_id, err.field = first.path, first.entry_id, first.field  # type: ignore[attr-defined]
    return err


def read_yaml(path: Path, problems: list[Problem], *, entry_id: str | None = None) -> Any:
    """The document in ``path``; None with a problem added when it cannot be read or parsed."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        problems.append(Problem(str(path), entry_id, None, "does not exist"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        problems.append(Problem(str(path), entry_id, None, f"YAML syntax error{where}: {what}",
                                hint="fix the YAML syntax (indentation, quotes, a missing colon)"))
    except UnicodeDecodeError as err:
        problems.append(Problem(str(path), entry_id, None, f"not UTF-8 text: {err}"))
    return None


@lru_cache(maxsize=8)
def validator(schema: str):
    """The compiled validator of a shipped JSON Schema (by file name)."""
    import jsonschema

    doc = json.loads(schema_path(schema).read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(doc)(doc)


def schema_problems(doc: Any, path: Path, schema: str, *, entry_id: str | None = None,
                    hints: dict[tuple[str, str], str] | None = None) -> list[Problem]:
    """JSON-Schema errors of one document, as problems naming the entry and the field.

    ``hints`` maps (validator, field) to a hint for that case, e.g. ``("pattern", "id")``.
    """
    out = []
    for err in sorted(validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        loc = ".".join(str(p) for p in err.absolute_path)
        message, hint = err.message, f"see schemas/{schema}"
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in (err.instance or {})]
            loc = ".".join(filter(None, [loc, missing[0] if missing else ""]))
            message = "is missing (required)"
        elif err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            loc = ".".join(filter(None, [loc, extra[0] if extra else ""]))
            message = f"is not a known field (known: {', '.join(err.schema.get('properties', {}))})"
            hint = "remove it or fix its spelling"
        elif err.validator == "type":
            want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            message = (
                f"should be {' or '.join(_TYPE_WORDS.get(w, w) for w in want)}, "
                f"got {type(err.instance).__name__} {err.instance!r}"
            )
        hint = (hints or {}).get((str(err.validator), loc), hint)
        out.append(Problem(str(path), entry_id, loc or None, message, hint, kind=str(err.validator)))
    return out


def load_document(path: Path, schema: str, cls: type[DatakitError], hint: str) -> Any:
    """Read one YAML document and check it against ``schema``; every problem at once as one ``cls`` error."""
    problems: list[Problem] = []
    doc = read_yaml(path, problems)
    if not problems:
        problems = schema_problems(doc, path, schema)
    if problems:
        raise problems_error(problems, cls, hint)
    return doc
