"""Where each format's rows point for their images: in place, or hard-linked / copied under ``<format>/images/``.

Paths are absolute by default, or relative to the folder of the split file (``export.image_paths``), which is
how LLaMA-Factory (``media_dir`` = the dataset folder), Qwen-VL (``data_path``) and LLaVA (``--image_folder``)
resolve them when pointed at that folder. A hard link that cannot be made (another file system) falls back to a
copy, and the card counts it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from datakit.export.record import ImageRef

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Placer:
    """Places one format's images and names them as its rows write them."""

    def __init__(self, mode: str, paths: str, final_root: Path, build_root: Path) -> None:
        self.mode = mode
        self.paths = paths
        self.final_root = final_root  # RUN/export/<format> once the export is complete
        self.build_root = build_root  # where it is being written now
        self.fallback_copies = 0

    def place(self, ref: ImageRef) -> str:
        """The path string a row holds for ``ref``; links or copies the file first where the mode says so."""
        if self.mode == "reference":
            final = ref.path  # absolute: the run root was resolved once
        else:
            name = _UNSAFE.sub("_", ref.image_id) + os.path.splitext(ref.path)[1].lower()
            final = str(self.final_root / "images" / name)
            target = self.build_root / "images" / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                self._put(Path(ref.path), target)
        if self.paths == "absolute":
            return final
        return os.path.relpath(final, self.final_root)

    def _put(self, source: Path, target: Path) -> None:
        if self.mode == "hardlink":
            try:
                os.link(source, target)
                return
            except OSError as err:
                if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                self.fallback_copies += 1
        shutil.copyfile(source, target)
