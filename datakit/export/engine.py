"""The export loop: tables read in slices, records rendered in worker processes, rows written as they come.

Only a slice of traces (``workers × export.batch_size``) and its studies, images and validation rows are in
memory at a time; the lookups are filtered from the parquet files per slice, never loaded whole. Workers return
each row already serialised, in order, so the files are the same whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from datakit.export.base import EXPORTERS, Exporter, Layout
from datakit.export.checks import image_problem, row_problem
from datakit.export.images import Placer
from datakit.export.priors import prior_remover
from datakit.export.record import Prompts, build_record
from datakit.export.selection import select, verdicts
from datakit.export.stats import Stats, length_measure
from datakit.tables import LABEL_COLUMNS

IMAGE_COLUMNS = ("image_id", "view", "converted_path", "source_path")


@dataclass
class Plan:
    """Everything a worker needs to render a batch (picklable: the worker builds its own objects from it)."""

    run_root: Path
    final_root: Path  # RUN/export
    build_root: Path  # the folder being written
    formats: list[str]
    tag_style: str
    image_mode: str
    image_paths: str
    max_images: int
    system_prompt: bool
    prompts_dir: str | None
    system_template: str
    user_template: str
    prior_phrases: list[str] | None  # None: keep prior sentences
    tokenizer: str | None


@dataclass
class Chunk:
    """One batch's rows of one split file, written by the worker: the main process appends the file as it is."""

    path: str
    rows: int = 0
    # (rows written before it in this chunk, study, (code, message)) for each row an export check left out
    failed: list[tuple[int, str, tuple[str, str]]] = field(default_factory=list)


class _ChunkWriter:
    def __init__(self, path: Path, json_list: bool) -> None:
        self.chunk = Chunk(str(path))
        self.json_list = json_list
        self.fh = open(path, "wb")  # noqa: SIM115 - closed by the batch

    def add(self, line: bytes) -> None:
        if self.json_list and self.chunk.rows:
            self.fh.write(b",\n")
        self.fh.write(line)
        if not self.json_list:
            self.fh.write(b"\n")
        self.chunk.rows += 1


@dataclass
class BatchOut:
    """One batch's chunk per (format, split), the studies set aside and the counts."""

    chunks: dict[tuple[str, str], Chunk] = field(default_factory=dict)
    set_aside: list[tuple[str, str, str]] = field(default_factory=list)  # (study, code, message)
    stats: Stats = field(default_factory=Stats)
    fallback_copies: int = 0


class Renderer:
    """Renders joined rows into every format's rows (one per worker process)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.prompts = Prompts(plan.prompts_dir, plan.system_template, plan.user_template, plan.tag_style,
                               plan.system_prompt)
        self.exporters: list[Exporter] = []
        self.placers: list[Placer] = []
        for name in plan.formats:
            cls = EXPORTERS.get(name)
            exp = cls(Layout(plan.final_root / name, plan.image_paths, plan.tag_style))
            self.exporters.append(exp)
            paths = "absolute" if exp.absolute_paths else plan.image_paths
            self.placers.append(Placer(plan.image_mode, paths, plan.final_root / name, plan.build_root / name))
        self.strip = prior_remover(plan.prior_phrases) if plan.prior_phrases is not None else None
        self.unit, self.measure = length_measure(plan.tokenizer)

    def batch(self, frame: pl.DataFrame, seq: int = 0) -> BatchOut:
        """Render one batch of joined rows into chunk files (``seq`` orders the batches)."""
        out = BatchOut()
        chunks: dict[tuple[str, str], _ChunkWriter] = {}
        folder = self.plan.build_root / ".chunks"
        folder.mkdir(exist_ok=True)
        try:
            self._rows(frame, seq, folder, chunks, out)
        finally:
            for key, w in chunks.items():
                w.fh.close()
                out.chunks[key] = w.chunk
        return out

    def _rows(self, frame: pl.DataFrame, seq: int, folder: Path, chunks: dict, out: BatchOut) -> None:
        for row in frame.iter_rows(named=True):
            rec = build_record(row, self.prompts, run_root=self.plan.run_root, max_images=self.plan.max_images,
                               strip_priors=self.strip)
            problem = ("no_images", "the study has no image file to show") if not rec.images else None
            for im in rec.images:
                problem = problem or image_problem(im.path)
            if problem:
                out.set_aside.append((rec.study_id, *problem))
                out.stats.excluded[problem[0]] += 1
                continue
            placed: dict[Any, list[str]] = {}
            for exp, placer in zip(self.exporters, self.placers, strict=True):
                # in place, every format folder is a sibling: the same strings serve all with the same paths
                key = placer.paths if placer.mode == "reference" else id(placer)
                if key not in placed:
                    placed[key] = [placer.place(im) for im in rec.images]
                n = exp.max_images or len(rec.images)
                refs = rec.images[:n]
                data = exp.row(rec, placed[key][:n])
                bad = row_problem(exp, data)
                key = (exp.name, rec.split)
                w = chunks.get(key)
                if w is None:
                    w = chunks[key] = _ChunkWriter(folder / f"{seq:08d}.{exp.name}.{rec.split}", exp.suffix == ".json")
                if bad:
                    w.chunk.failed.append((w.chunk.rows, rec.study_id, bad))
                else:
                    w.add(orjson.dumps(data))
                    out.stats.images_per_row[(exp.name, len(refs))] += 1
            labels = {c: row.get(c) for c in LABEL_COLUMNS}
            out.stats.add_record(rec, labels, self.measure(rec.think) if rec.think else 0, bool(row["flagged"]))
        out.fallback_copies = sum(p.fallback_copies for p in self.placers)
        for p in self.placers:
            p.fallback_copies = 0


_RENDERER: Renderer | None = None


def _init(plan: Plan) -> None:
    global _RENDERER
    _RENDERER = Renderer(plan)


def _render(job: tuple[int, pl.DataFrame]) -> BatchOut:
    assert _RENDERER is not None
    return _RENDERER.batch(job[1], job[0])


def slices(run_root: Path, size: int, review: dict[str, str], include_flagged: bool):
    """Joined batches of (trace, study, images, verdict) rows, ``size`` traces at a time, with selection applied."""
    traces = pl.scan_parquet(run_root / "traces.parquet").select(
        "study_id", "trace_json", "teacher", "model", "template_sha", "schema_id")
    studies = pl.scan_parquet(run_root / "studies.parquet").select("study_id", "split", "dataset", *LABEL_COLUMNS)
    images = pl.scan_parquet(run_root / "images.parquet").select("study_id", *IMAGE_COLUMNS)
    # the streaming engine hands the traces over in chunks, never the whole table (one parquet row group can
    # hold every trace of a run)
    for tr in traces.collect_batches(chunk_size=size, maintain_order=True):
        if tr.height == 0:
            continue
        ids = tr["study_id"].implode()
        keep = pl.col("study_id").is_in(ids)
        st = studies.filter(keep).collect()
        im = (images.filter(keep).group_by("study_id", maintain_order=True)
              .agg(images=pl.struct(*IMAGE_COLUMNS)).collect())
        ver = verdicts(run_root / "validation.parquet", keep).collect()
        frame = (tr.join(st, on="study_id", how="left").join(im, on="study_id", how="left")
                 .join(ver, on="study_id", how="left"))
        frame = select(frame, review, include_flagged).with_columns(
            exclude=pl.when(pl.col("split").is_null()).then(pl.lit("unknown_study"))
            .when(pl.col("validated").is_null()).then(pl.lit("not_validated"))
            .otherwise(pl.col("exclude")))
        yield frame


def render_all(plan: Plan, frames, workers: int, batch_size: int):
    """Yield (joined frame, [BatchOut per sub-batch]) per slice, rendering in ``workers`` processes."""
    seq = 0

    def jobs(frame: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
        nonlocal seq
        todo = frame.filter(pl.col("exclude").is_null())
        out = [(seq + k, todo.slice(i, batch_size)) for k, i in enumerate(range(0, todo.height, batch_size))]
        seq += len(out)
        return out

    if workers <= 1:
        renderer = Renderer(plan)
        for frame in frames:
            yield frame, [renderer.batch(part, n) for n, part in jobs(frame)]
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(plan,)) as pool:
        for frame in frames:
            yield frame, list(pool.imap(_render, jobs(frame)))


def default_workers(configured: int | None) -> int:
    """Worker processes: the configured number, else the cores this process may use."""
    if configured:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


