"""The LLM teacher: renders the prompts per study, sends them through the cached transport, parses the traces.

Single-call mode asks for the whole trace at once; multi-stage mode asks for perception, then reasoning (seeing
the perception), then reflection and report (seeing both): three requests per study, each cached on its own, so
a changed reflection prompt re-asks only the third stage. The final report of every trace is the study's own
report, whatever the teacher wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from datakit import logs
from datakit.annotate.cache import Cache
from datakit.annotate.engine import run_requests
from datakit.annotate.prompts import MULTI, REASK, SCHEMA, SINGLE, PromptSet
from datakit.annotate.request import LazyImage, TeacherRequest, TeacherResult, response_format_for
from datakit.annotate.teacher import StudyInput, TraceOutcome, teacher
from datakit.config import DatakitConfig
from datakit.errors import ConfigError
from datakit.hashing import file_digest
from datakit.rundir import RunDir
from datakit.tables import LABELS
from datakit.trace import SCHEMA_ID, STAGE_PARTS, part_schema, schema_errors, trace_schema

_STATUS_WORD = {1: "positive", 0: "negative", -1: "uncertain"}


def study_context(study: StudyInput, kb: Any) -> dict[str, Any]:
    """The variables the templates see for one study."""
    labels = {LABELS[c]: _STATUS_WORD[v] for c, v in study.labels.items() if v is not None}
    knowledge = []
    for entry_id in study.knowledge:
        if entry_id in kb:
            e = kb.get(entry_id)
            knowledge.append({"id": e.id, "name": e.name, "region": e.region or "any", "definition": e.definition,
                              "signs": e.signs[:4]})
    return {
        "study": {
            "study_id": study.study_id,
            "dataset": study.dataset,
            "indication": study.indication,
            "comparison": study.comparison,
            "findings": study.findings,
            "impression": study.impression,
            "labels": labels,
        },
        "images": [{"image_id": im.image_id, "view": im.view} for im in study.images],
        "knowledge": knowledge,
    }


class TraceParser:
    """Parse one stage's answer: JSON, then the schema, then ids the knowledge base must know."""

    def __init__(self, parts: tuple[str, ...] | None, kb: Any) -> None:
        self.parts = parts
        self.kb = kb

    def __call__(self, text: str) -> dict[str, Any]:
        """The trace (or part) in ``text``; a ValueError says what is wrong with it, for the re-ask."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            where = f"{err.msg} at line {err.lineno} column {err.colno}"
            raise ValueError(f"the reply is not valid JSON ({where})") from None
        problems = schema_errors(obj, self.parts)
        if problems:
            raise ValueError("the JSON does not follow the schema: " + "; ".join(problems))
        unknown = sorted(self._unknown_ids(obj))
        if unknown:
            raise ValueError(
                f"these are not knowledge entry ids: {', '.join(unknown[:8])}; use ids from the knowledge list "
                "(or 'normal' for a region that looks normal)"
            )
        return obj

    def _unknown_ids(self, obj: dict[str, Any]) -> set[str]:
        ids: set[str] = set()
        for item in obj.get("perception", []):
            ids.add(item["finding"])
        for step in obj.get("reasoning", []):
            ids.add(step["conclusion"])
            ids.update(step["knowledge"])
        for c in obj.get("reflection", {}).get("corrections", []):
            ids.add(c["finding"])
        return {i for i in ids if i != "normal" and i not in self.kb}


@teacher("llm")
class LlmTeacher:
    """Traces from any OpenAI-compatible endpoint, every call cached."""

    name = "llm"

    def __init__(self, *, config: DatakitConfig, kb: Any, run: RunDir, progress: bool = True) -> None:
        tc = config.teacher
        if not tc.model:
            raise ConfigError("the llm teacher needs a model", hint="pass --model (and --base-url for a local server)")
        self.config = config
        self.tc = tc
        self.kb = kb
        self.run = run
        self.progress = progress
        self.prompts = PromptSet(tc.prompts_dir)
        self.templates = SINGLE if tc.prompt_mode == "single" else MULTI
        if tc.structured_output == "json_object":  # the endpoint will not enforce the schema: show it
            self.templates = (*self.templates, SCHEMA)
        if tc.max_reasks:  # its words are in every re-ask
            self.templates = (*self.templates, REASK)
        self.template_sha = self.prompts.sha(*self.templates)
        regions = [
            {"id": r.id, "name": r.name, "inspect": " ".join(r.description.split()), "findings": r.findings}
            for r in kb.regions.values()
        ]
        self.system = self.prompts.render("annotate/system.j2", regions=regions, schema_name=SCHEMA_ID).text
        self._digests: dict[str, str] = {}
        self._schema_text: dict[tuple[str, ...] | None, str] = {}

    # requests ------------------------------------------------------------------------------------------------
    def _images(self, study: StudyInput) -> list[LazyImage]:
        out = []
        for im in study.images:
            if im.path is None:
                raise ConfigError("the llm teacher sends images, but this run's images were not converted",
                                  hint="re-run `datakit ingest` without --no-convert")
            # the convert_key names the converted PNG's content without reading it (a cached run reads no image)
            digest = im.digest or self._digests.get(im.path) or file_digest(im.path)
            self._digests[im.path] = digest
            out.append(LazyImage(im.path, digest, self.tc.image_max_side))
        return out

    def request(self, study: StudyInput, template: str, parts: tuple[str, ...] | None,
                **extra: Any) -> TeacherRequest:
        """One rendered request for one study and one template."""
        ctx = study_context(study, self.kb)
        user = self.prompts.render(template, **ctx, **extra).text
        images = self._images(study)
        content: list[dict[str, Any]] = [{"type": "text", "text": user}]
        content += [{"type": "image_url", "image_url": {"url": img.placeholder}} for img in images]
        schema = trace_schema() if parts is None else part_schema(parts)
        if self.tc.structured_output == "json_object":
            shown = self._schema_text.get(parts)
            if shown is None:
                as_json = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
                shown = self.prompts.render(SCHEMA, schema_name=SCHEMA_ID, schema=as_json).text
                self._schema_text[parts] = shown
            content.append({"type": "text", "text": shown})
        format_name = SCHEMA_ID.replace(".", "_") + ("_" + "_".join(parts) if parts else "")
        body: dict[str, Any] = {
            "model": self.tc.model,
            "messages": [{"role": "system", "content": self.system}, {"role": "user", "content": content}],
            "response_format": response_format_for(schema, self.tc.structured_output, name=format_name),
            "max_completion_tokens": self.tc.max_output_tokens,
            **({"temperature": self.tc.temperature} if self.tc.temperature is not None else {}),
            **self.tc.extra_body,
        }
        return TeacherRequest(study.study_id, body, template, self.template_sha, SCHEMA_ID, tuple(images))

    def first_requests(self, studies: Sequence[StudyInput]) -> list[TeacherRequest]:
        """The requests that need no earlier answer (all of them in single-call mode): for --dry-run."""
        if self.tc.prompt_mode == "single":
            return [self.request(s, "annotate/user.j2", None) for s in studies]
        return [self.request(s, "annotate/perception.j2", STAGE_PARTS["perception"]) for s in studies]

    # running -------------------------------------------------------------------------------------------------
    def _send(self, requests: Iterator[TeacherRequest], parts: tuple[str, ...] | None,
              total: int) -> list[TeacherResult]:  # fmt: skip
        with Cache.for_run(self.run, self.tc.cache_path) as cache:  # closed: the WAL is folded in, not left over
            return run_requests(requests, cache=cache, config=self.tc, parse=TraceParser(parts, self.kb),
                                transport=self.tc.transport, run=self.run, progress=self.progress, total=total,
                                prompts=self.prompts)  # fmt: skip

    def annotate(self, studies: Sequence[StudyInput]) -> list[TraceOutcome]:
        """Traces for the studies; failures carry the transport's error code."""
        logs.setup(self.run.root)  # the retries and their reasons, in RUN/datakit.log
        templates = ",".join(self.templates)
        outcomes: dict[str, TraceOutcome] = {}  # made as the answers come: the first request leaves sooner
        parts_so_far: dict[str, dict[str, Any]] = {s.study_id: {} for s in studies}
        if self.tc.prompt_mode == "single":
            stages = [("annotate/user.j2", None)]
        else:
            stages = [(f"annotate/{s}.j2", STAGE_PARTS[s]) for s in ("perception", "reasoning", "reflection")]
        alive = list(studies)
        for template, parts in stages:
            extra = lambda sid: {k: json.dumps(v, ensure_ascii=False) for k, v in parts_so_far[sid].items()}  # noqa: E731
            # built lazily: the transport starts sending while later prompts are still being rendered
            requests = (self.request(s, template, parts, **extra(s.study_id)) for s in alive)
            results = self._send(requests, parts, len(alive))
            survivors = []
            for study, result in zip(alive, results, strict=False):
                o = outcomes.get(study.study_id)
                if o is None:
                    o = outcomes[study.study_id] = TraceOutcome(study.study_id, None, model=self.tc.model,
                                                                templates=templates, template_sha=self.template_sha)
                o.input_tokens += result.usage.get("input_tokens", 0)
                o.output_tokens += result.usage.get("output_tokens", 0)
                o.cost_usd += result.cost_usd or 0.0
                o.cache_keys += result.keys or [result.key]
                if result.ok:
                    parts_so_far[study.study_id].update(result.parsed)
                    survivors.append(study)
                else:
                    o.error_code = result.error_code
                    stage = template.rsplit("/", 1)[-1].removesuffix(".j2")
                    o.error = f"{stage}: {result.error or result.error_code}"
            alive = survivors
        for study in alive:
            trace = parts_so_far[study.study_id]
            # The final report is the study's own report, whatever the teacher wrote.
            trace["report"] = {"findings": study.findings, "impression": study.impression}
            outcomes[study.study_id].trace = {k: trace[k] for k in ("perception", "reasoning", "reflection", "report")}
        return [outcomes[s.study_id] for s in studies]
