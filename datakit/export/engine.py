"""The export loop: tables read in slices, records rendered in worker processes, rows written as they come.

Only a slice of traces (``workers × export.batch_size``) and its studies, images and validation rows are in
memory at a time; the lookups are filtered from the parquet files per slice, never loaded whole. Workers return
each row already serialised, in order, so the files are the same whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson
import polars as pl

from datakit.export.base import EXPORTERS, Exporter, Layout
from datakit.export.checks import image_problem, row_problem
from datakit.export.images import Placer
from datakit.export.record import Prompts, build_record
from datakit.export.selection import select, verdicts
from datakit.export.stats import Stats, length_measure
from datakit.reading.priors import strip_priors
from datakit.tables import LABEL_COLUMNS

IMAGE_COLUMNS = ("image_id", "view", "converted_path", "source_path")
IMAGE_THREADS = 8  # image files checked at once per worker (I/O in flight on a cold cache)
# what a worker gets per study, then the label columns
ROW = ("study_id", "trace_json", "split", "dataset", "images", "flagged")


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
    remove_priors: bool  # drop (or rewrite) report sentences about prior studies: datakit.reading.priors
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
        self.strip = strip_priors if plan.remove_priors else None
        self._pool: Any = None
        self.unit, self.measure = length_measure(plan.tokenizer)

    def batch(self, rows: list[tuple], seq: int = 0) -> BatchOut:
        """Render one batch of joined rows (tuples of :data:`ROW`) into chunk files; ``seq`` orders the batches.

        Plain Python in, files out: a forked worker must never touch polars, whose thread pool does not survive
        a fork.
        """
        out = BatchOut()
        chunks: dict[tuple[str, str], _ChunkWriter] = {}
        folder = self.plan.build_root / ".chunks"
        folder.mkdir(exist_ok=True)
        try:
            self._rows(rows, seq, folder, chunks, out)
        finally:
            for key, w in chunks.items():
                w.fh.close()
                out.chunks[key] = w.chunk
        return out

    def _image_problems(self, paths: list[str]) -> dict[str, Any]:
        """:func:`image_problem` of each path, several files in flight: a cold file cache is read in parallel.

        Reading 377,110 image headers one after the other waits on the disk for each; threads overlap the waits
        (the reads release the GIL). The pool is made in the worker process, after the fork.
        """
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=IMAGE_THREADS)
        return dict(zip(paths, self._pool.map(image_problem, paths), strict=True))

    def _rows(self, rows: list[tuple], seq: int, folder: Path, chunks: dict, out: BatchOut) -> None:
        n_fixed = len(ROW)
        seconds = out.stats.seconds  # CPU-side time per part: the benchmark's figure per format
        t0 = perf_counter()
        records = []
        for values in rows:
            row = dict(zip(ROW, values[:n_fixed], strict=True))
            records.append((values, row, build_record(row, self.prompts, run_root=self.plan.run_root,
                                                      max_images=self.plan.max_images, strip_priors=self.strip)))
        checked = self._image_problems(list(dict.fromkeys(im.path for _, _, r in records for im in r.images)))
        seconds["record and images"] += perf_counter() - t0
        for values, row, rec in records:
            problem = ("no_images", "the study has no image file to show") if not rec.images else None
            for im in rec.images:
                problem = problem or checked[im.path]
            if problem:
                out.set_aside.append((rec.study_id, *problem))
                out.stats.excluded[problem[0]] += 1
                continue
            placed: dict[Any, list[str]] = {}
            t1 = perf_counter()
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
                t2 = perf_counter()
                seconds[exp.name] += t2 - t1
                t1 = t2
            out.stats.add_record(rec, self.measure(rec.think) if rec.think else 0, bool(row["flagged"]),
                                 values[n_fixed:])
        out.fallback_copies = sum(p.fallback_copies for p in self.placers)
        for p in self.placers:
            p.fallback_copies = 0


def render_chunk(renderer: Renderer, job: tuple[int, list[tuple]]) -> BatchOut:
    """Render one numbered batch (run in a worker by :func:`datakit.parallel.map_chunks`)."""
    return renderer.batch(job[1], job[0])


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


def jobs(frames, batch_size: int, on_frame):
    """Numbered batches of the rows to render; ``on_frame`` sees every joined slice first (its exclusions)."""
    seq = 0
    for frame in frames:
        on_frame(frame)
        todo = frame.filter(pl.col("exclude").is_null()).select(*ROW, *LABEL_COLUMNS)
        for i in range(0, todo.height, batch_size):
            yield seq, todo.slice(i, batch_size).rows()
            seq += 1




