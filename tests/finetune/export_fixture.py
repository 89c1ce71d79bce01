"""A small ``trl`` export made by ``datakit export`` itself, from the demo run's traces.

The fine-tune path consumes the export unchanged: :func:`make_trl_export` validates a copy of the annotated run
when needed, runs the export stage with the asked tag style and image paths, and hands back its ``trl`` folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def make_trl_export(run: Path, dest: Path, *, tags: str = "think", image_paths: str = "absolute") -> Path:
    """``datakit export --formats trl`` of an annotated run, placed at ``dest``; returns ``dest``."""
    import datakit.export
    import datakit.validate
    from datakit.config import load_config

    work = run if dest.resolve() == (run / "export" / "trl").resolve() else dest.parent / f".run-{dest.name}"
    if work != run and not work.exists():
        shutil.copytree(run, work)
    if not (work / "validation.parquet").is_file():
        datakit.validate.run(work, load_config())
    # relative paths are relative to the split files' folder: the images travel with it (copy mode)
    cfg = load_config(overrides={
        "export.formats": ["trl"], "export.tag_style": tags, "export.image_paths": image_paths,
        "export.image_mode": "copy" if image_paths == "relative" else "reference",
    })
    datakit.export.run(work, cfg)
    made = work / "export" / "trl"
    if made.resolve() != dest.resolve():
        shutil.copytree(made, dest, dirs_exist_ok=True)
    return dest
