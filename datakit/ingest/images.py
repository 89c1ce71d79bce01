"""Source images (DICOM, JPG, PNG) → 8-bit grayscale PNGs ready for a vision-language model.

DICOM goes through :func:`datakit.ingest.dicom.dicom_to_uint8` (stored bits, modality rescale, optional VOI
LUT or window, MONOCHROME1 inverted, min-max to 8 bit: as MIMIC-CXR-JPG does), then here: optional histogram
equalisation (the MIMIC-CXR-JPG convention) and the longest side brought down to ``max_size`` (aspect kept,
never enlarged).

8-bit JPG/PNG sources are already display-ready: they are made grayscale and resized, nothing else. 16-bit
PNG/TIFF sources hold raw values and are treated like DICOM without tags: min-max, equalisation, resize.

Re-runs are cheap: each image gets ``convert_key`` = hash of its source bytes, the converter version and every
setting that changes the output. An image whose key matches the previous ingest and whose PNG is still there
is not converted again (its source bytes are still read and hashed). PNGs are written atomically.

The work runs in a process pool (``ImageConfig.workers``, default: every core this process may use), in
chunks so that a few hundred images cost a few dozen round trips; results are put back in the input's order,
so the output does not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from datakit.config import ImageConfig
from datakit.errors import ConfigError
from datakit.hashing import content_hash
from datakit.ingest import dicom, sniff
from datakit.ingest.dicom import ImageRejected, to_uint8
from datakit.parallel import cores, given, map_chunks
from datakit.rundir import Quarantine, RunDir, atomic_path

# Part of every convert_key: bump it when a change alters the PNGs, so that every image is converted again.
CONVERTER_VERSION = "png8/1"
# zlib level of the PNGs: 3 writes a 1024-pixel radiograph about 4x faster than Pillow's default 6, for files
# about 15% larger (measured on synthetic 12-bit chest images); the pixels are the same.
PNG_LEVEL = 3
# Read as DICOM whatever the extension when the file has the 'DICM' marker; also these extensions (and none).
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ""}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class _Settings:
    """What changes the output PNG (``workers`` and ``convert`` do not)."""

    max_size: int
    voi_lut: bool
    window: tuple[float, float] | None
    equalize: bool

    @classmethod
    def from_config(cls, cfg: ImageConfig) -> _Settings:
        window = None if cfg.window is None else (float(cfg.window[0]), float(cfg.window[1]))
        if window is not None and window[1] < 1:
            raise ConfigError(
                f"ingest.images.window has width {window[1]:g}; a DICOM window is at least 1 wide",
                hint="give window = [center, width] with width >= 1, or leave it unset",
            )
        return cls(cfg.max_size, cfg.voi_lut, window, cfg.equalize)

    def key(self, digest: str) -> str:
        return content_hash(
            {
                "converter": CONVERTER_VERSION,
                "source_digest": digest,
                "max_size": self.max_size,
                "voi_lut": self.voi_lut,
                "window": None if self.window is None else list(self.window),
                "equalize": self.equalize,
            }
        )


def converted_name(image_id: str) -> str:
    """File name of an image's PNG: the id when it is a safe file name, else a cleaned id + a short hash."""
    safe = _UNSAFE.sub("_", image_id).strip("._")[:120]
    if safe and safe == image_id:
        return f"{safe}.png"
    tag = hashlib.blake2b(image_id.encode("utf-8"), digest_size=4).hexdigest()
    return f"{safe or 'image'}-{tag}.png"


# ------------------------------------------------------------------------------------------------------------
# 8-bit steps after the grey levels: equalisation, size


def equalize(img: np.ndarray) -> np.ndarray:
    """Histogram-equalise an 8-bit image the way OpenCV's ``equalizeHist`` does (the MIMIC-CXR-JPG step)."""
    im = Image.fromarray(img)  # Pillow's histogram() and point() are faster than np.bincount + indexing
    hist = np.asarray(im.histogram(), dtype=np.int64)
    total = img.size
    first = int(np.flatnonzero(hist)[0]) if total else 0
    if hist[first] == total:  # a single grey level: OpenCV leaves the image as it is
        return img.copy()
    lut = np.rint((np.cumsum(hist) - hist[first]) * (255.0 / (total - hist[first])))
    lut[:first] = 0
    return np.asarray(im.point(np.clip(lut, 0, 255).astype(np.uint8).tolist()))


def fit_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """Size with the longest side at most ``max_size``, aspect kept; never larger than the source."""
    longest = max(width, height)
    if longest <= max_size:
        return width, height
    scale = max_size / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


# ------------------------------------------------------------------------------------------------------------
# JPG / PNG


def _decode_bitmap(data: bytes, path: str, settings: _Settings) -> tuple[np.ndarray, int, int]:
    """An image file → (8-bit grayscale, source width, source height)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            size = im.size
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # raw high-depth data: treat like DICOM
                raw = np.asarray(im)
                img = to_uint8(raw)
                return (equalize(img) if settings.equalize else img), *size
            gray = im.convert("L") if im.mode != "L" else im
            return np.asarray(gray, dtype=np.uint8).copy(), *size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageRejected("corrupt_image", f"cannot read {path} as an image: {sniff.problem(data, err)}; "
                            "download the file again, or remove it") from err


# ------------------------------------------------------------------------------------------------------------
# one image, one chunk


def _is_dicom(data: bytes, path: str) -> bool:
    return data[128:132] == b"DICM" or Path(path).suffix.lower() in DICOM_SUFFIXES


def convert_file(data: bytes, path: str, settings: _Settings) -> tuple[np.ndarray, int, int]:
    """Source bytes → (8-bit grayscale array at output size, source width, source height)."""
    if _is_dicom(data, path):
        arr, ds = dicom.decode(data, path)
        src_h, src_w = arr.shape[:2]
        img = dicom.dicom_to_uint8(arr, ds, use_file_voi=settings.voi_lut, override=settings.window)
        del arr
        if settings.equalize:
            img = equalize(img)
    else:
        img, src_w, src_h = _decode_bitmap(data, path, settings)
    height, width = img.shape
    new_w, new_h = fit_size(width, height, settings.max_size)
    if (new_w, new_h) != (width, height):
        img = np.asarray(Image.fromarray(img).resize((new_w, new_h), Image.Resampling.LANCZOS))
    return img, src_w, src_h


# (row, image_id, source_path, absolute PNG path, previous key, previous (width, height, src_w, src_h))
_Task = tuple[int, str, str, str, "str | None", "tuple[int, int, int, int] | None"]


def _convert_one(task: _Task, settings: _Settings) -> tuple:
    row, _image_id, source, out_path, prev_key, prev_dims = task
    try:
        with open(source, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        message = f"{source} is listed but not on disk; download it, or drop it from the source's image list"
        return ("fail", row, "missing_image", message)
    except OSError as err:
        message = f"cannot read {source}: {err.strerror or err}; check that it is a readable file"
        return ("fail", row, "corrupt_image", message)
    digest = content_hash(data)
    key = settings.key(digest)
    if prev_key == key and prev_dims is not None and os.path.isfile(out_path):
        return ("ok", row, digest, key, *prev_dims)
    try:
        img, src_w, src_h = convert_file(data, source, settings)
    except ImageRejected as rej:
        return ("fail", row, rej.code, str(rej))
    del data
    with atomic_path(Path(out_path)) as tmp:
        Image.fromarray(img).save(tmp, format="PNG", compress_level=PNG_LEVEL)
    return ("ok", row, digest, key, img.shape[1], img.shape[0], src_w, src_h)


def _convert_chunk(tasks: Sequence[_Task], settings: _Settings) -> list[tuple]:
    return [_convert_one(t, settings) for t in tasks]


# ------------------------------------------------------------------------------------------------------------
# the table


def _previous_lookup(previous: pl.DataFrame | None) -> dict[str, tuple[str, str, tuple[int, int, int, int]]]:
    """image_id → (convert_key, converted_path, dims) of rows of an earlier ingest that can be reused."""
    need = ("image_id", "convert_key", "converted_path", "width", "height", "source_width", "source_height")
    if previous is None or not all(c in previous.columns for c in need):
        return {}
    rows = previous.select(need).drop_nulls()
    return {r[0]: (r[1], r[2], (int(r[3]), int(r[4]), int(r[5]), int(r[6]))) for r in rows.iter_rows()}


def _worker_count(cfg: ImageConfig) -> int:
    return cfg.workers or cores()


def _chunks(tasks: list[_Task], workers: int) -> list[list[_Task]]:
    # ~16 chunks per worker balance uneven image sizes; at most 64 images per chunk keeps a slow chunk short,
    # at least 1; a chunk's tasks are small tuples, so pickling costs nothing next to decoding an image.
    size = min(64, max(1, -(-len(tasks) // (workers * 16))))
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def _plan(ids: list[str], sources: list[str | None], run: RunDir, previous: pl.DataFrame | None):
    """Tasks for the workers, PNG paths per row, and rows that fail before any file is opened."""
    reuse = _previous_lookup(previous)
    tasks: list[_Task] = []
    rel_paths: dict[int, str] = {}
    failed: dict[int, tuple[str, str]] = {}
    seen: set[str] = set()
    for row, (image_id, source) in enumerate(zip(ids, sources, strict=True)):
        if image_id in seen:
            failed[row] = ("duplicate_image", f"image {image_id} is listed more than once; the first is used")
            continue
        seen.add(image_id)
        if not source:
            failed[row] = ("missing_image", f"image {image_id} has no source path; check the source's list")
            continue
        rel = f"images/{converted_name(image_id)}"
        rel_paths[row] = rel
        prev = reuse.get(image_id)
        prev_key, prev_dims = (prev[0], prev[2]) if prev is not None and prev[1] == rel else (None, None)
        tasks.append((row, image_id, source, str(run.root / rel), prev_key, prev_dims))
    return tasks, rel_paths, failed


def _run(tasks: list[_Task], settings: _Settings, workers: int) -> list[tuple]:
    """Convert in this process (one worker) or in a pool; results in any order, each carrying its row."""
    workers = min(workers, len(tasks))
    if workers <= 1:
        return _convert_chunk(tasks, settings)
    results: list[tuple] = []
    for part in map_chunks(_convert_in_worker, _chunks(tasks, workers), workers=workers, setup=given,
                           setup_args=(settings,)):
        results.extend(part)
    return results


def _convert_in_worker(settings: _Settings, tasks: list[_Task]) -> list[tuple]:
    return _convert_chunk(tasks, settings)


def convert_images(
    images: pl.DataFrame,
    run: RunDir,
    cfg: ImageConfig,
    quarantine: Quarantine,
    previous: pl.DataFrame | None = None,
    progress: bool = False,
) -> pl.DataFrame:
    """Convert every image to ``run/images/<image_id>.png``; failures go to ``quarantine``, the rest return.

    The result keeps the input's columns and rows (in order, minus the failed ones) and fills
    ``source_digest``, ``convert_key``, ``converted_path`` (relative to the run), ``width``, ``height`` (of
    the PNG) and ``source_width``, ``source_height`` (of the source). ``previous`` is the images table of an
    earlier ingest into the same run: images whose ``convert_key`` is unchanged and whose PNG exists are not
    converted again.
    """
    settings = _Settings.from_config(cfg)
    run.images_dir.mkdir(parents=True, exist_ok=True)
    ids = images["image_id"].cast(pl.Utf8).to_list()
    sources = images["source_path"].cast(pl.Utf8).to_list()
    datasets = images["dataset"].to_list() if "dataset" in images.columns else [None] * images.height
    tasks, rel_paths, failed = _plan(ids, sources, run, previous)

    done: dict[int, tuple] = {}
    from datakit.progress import StageProgress

    with StageProgress("converting images", total=len(tasks), enabled=progress and bool(tasks),
                       unit="images") as bar:
        for res in _run(tasks, settings, _worker_count(cfg)):
            bar.advance()
            if res[0] == "ok":
                done[res[1]] = res[2:]
            else:
                failed[res[1]] = (res[2], res[3])
    for row in sorted(failed):
        code, message = failed[row]
        quarantine.add("image", ids[row], code, message, path=sources[row], dataset=datasets[row])

    keep = sorted(done)
    filled = pl.DataFrame(
        {
            "source_digest": [done[r][0] for r in keep],
            "convert_key": [done[r][1] for r in keep],
            "converted_path": [rel_paths[r] for r in keep],
            "width": [done[r][2] for r in keep],
            "height": [done[r][3] for r in keep],
            "source_width": [done[r][4] for r in keep],
            "source_height": [done[r][5] for r in keep],
        },
        schema={"source_digest": pl.Utf8, "convert_key": pl.Utf8, "converted_path": pl.Utf8,
                "width": pl.Int32, "height": pl.Int32, "source_width": pl.Int32, "source_height": pl.Int32},
    )
    kept = images.with_row_index("_row").filter(pl.col("_row").is_in(keep)).drop("_row")
    kept = kept.drop([c for c in filled.columns if c in kept.columns])
    return pl.concat([kept, filled], how="horizontal")
