"""DICOM → PNG conversion throughput on full-size synthetic chest radiographs.

``run_conversion_benchmark(workdir, n=500)`` writes (once; reused while present) ``n`` DICOMs of about
2500 × 2000 pixels, 12 bits stored in 16, uncompressed like MIMIC-CXR's, mostly MONOCHROME2 with every fourth
one MONOCHROME1 and some with a window, then times :func:`datakit.ingest.images.convert_images` over them with
the default settings (min-max, equalisation, longest side 1024), and a second time with the first run's table
as ``previous`` (nothing to convert: the cost of a re-run, which still reads and hashes every source).

CPU utilisation = CPU seconds of this process and its workers / wall seconds / cores used; 1.0 means every
core was busy the whole time.
"""

from __future__ import annotations

import os
import resource
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from datakit.config import ImageConfig
from datakit.ingest.images import convert_images
from datakit.parallel import worker_context
from datakit.rundir import Quarantine, RunDir

FORMAT_VERSION = "1"  # bump when the synthetic files change, so old ones are rewritten


def _chest(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A chest-like picture in [0, 1]: body, two lungs, mediastinum, diaphragm; drawn small, then enlarged."""
    h, w = 250, 200
    v, u = np.mgrid[0:h, 0:w]
    u = u / w * 2 - 1
    v = v / h
    body = (np.abs(u) < 0.9 - 0.3 * (v < 0.12)).astype(float)
    img = 0.55 * body
    for side in (-1, 1):
        lung = ((u - side * 0.45) / 0.32) ** 2 + ((v - 0.45) / 0.33) ** 2 < 1
        img -= 0.35 * lung * (v < 0.72 + 0.05 * side)
    img += 0.3 * ((np.abs(u - 0.05) < 0.14 + 0.18 * (v > 0.5)) & (v > 0.1) & (v < 0.75))
    img += 0.15 * (v > 0.75) * body
    img += 0.05 * np.sin(v * 60) * (np.abs(u) > 0.15) * body  # rib-like banding
    big = Image.fromarray(img.astype(np.float32), mode="F").resize((cols, rows), Image.Resampling.BILINEAR)
    out = np.asarray(big) + rng.normal(0, 0.01, (rows, cols)).astype(np.float32)
    return np.clip((out - out.min()) / (out.max() - out.min()), 0, 1)


def _write_one(args: tuple[str, int]) -> None:
    path, index = args
    rng = np.random.default_rng(index)
    rows, cols = 2500 + int(rng.integers(-120, 121)), 2000 + int(rng.integers(-120, 121))
    mono1 = index % 4 == 3
    p = _chest(rows, cols, rng)
    stored = np.rint(100 + 3900 * (1 - p if mono1 else p)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["datakit bench", str(index)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ViewPosition = "CR", "PA"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if index % 3 == 0:
        ds.WindowCenter, ds.WindowWidth = 2048, 3600
    ds.PixelData = stored.tobytes()
    tmp = f"{path}.partial"
    ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)


def write_dicoms(folder: Path, n: int, workers: int) -> list[Path]:
    """The n benchmark files, written only if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"bench-{FORMAT_VERSION}-{i:05d}.dcm" for i in range(n)]
    todo = [(str(p), i) for i, p in enumerate(paths) if not p.is_file()]
    if todo:
        print(f"writing {len(todo)} synthetic DICOMs of about 2500 x 2000 to {folder} (once) ...", flush=True)
        with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context()) as pool:
            list(pool.map(_write_one, todo, chunksize=4))
    return paths


class _PeakRss:
    """Samples the resident memory of this process and its children (the pool workers) every 50 ms."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(images: pl.DataFrame, run: RunDir, cfg: ImageConfig, previous: pl.DataFrame | None):
    quarantine = Quarantine("bench")
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    with _PeakRss() as rss:
        out = convert_images(images, run, cfg, quarantine, previous)
    wall = time.perf_counter() - t0
    return out, quarantine, wall, _cpu_seconds() - cpu0, rss.peak


def run_conversion_benchmark(workdir: Path, n: int = 500, workers: int | None = None) -> dict:
    """Write (once) and convert ``n`` full-size DICOMs; returns wall time, images/s, CPU use and memory."""
    workdir = Path(workdir)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    used = workers or cores
    paths = write_dicoms(workdir / "dicoms", n, used)
    run = RunDir.create(workdir / "run")
    shutil.rmtree(run.images_dir, ignore_errors=True)  # a cold conversion every time
    images = pl.DataFrame({"image_id": [p.stem for p in paths], "source_path": [str(p) for p in paths]})
    cfg = ImageConfig(workers=workers)
    out, quarantine, wall, cpu, peak = _timed(images, run, cfg, None)
    _, _, rerun_wall, _, _ = _timed(images, run, cfg, out)
    # largest child of this process so far (kB on Linux); run alone, that is the largest conversion worker
    child_peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "images": n,
        "converted": out.height,
        "quarantined": quarantine.count(),
        "workers": min(used, n),
        "cores": cores,
        "input_GB": sum(p.stat().st_size for p in paths) / 1e9,
        "output_MB": sum((run.root / p).stat().st_size for p in out["converted_path"]) / 1e6,
        "wall_s": wall,
        "images_per_s": n / wall,
        "cpu_s": cpu,
        "cpu_utilisation": cpu / wall / min(used, n),
        "peak_rss_MB_all_processes": peak / 2**20,
        "peak_rss_MB_largest_child": child_peak_kb / 1024,
        "rerun_wall_s (nothing to convert)": rerun_wall,
        "rerun_images_per_s": n / rerun_wall,
    }


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "_work" / "dicom-bench")
    args = ap.parse_args()
    print(json.dumps(run_conversion_benchmark(args.workdir, args.n, args.workers), indent=2))
