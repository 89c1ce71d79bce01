"""Split files written row by row: JSON Lines, or one JSON list per split for LLaVA."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO


class SplitWriter:
    """One split file; ``rows`` counts what was written (row numbers in messages start at 1)."""

    def __init__(self, path: Path, *, json_list: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.json_list = json_list
        self.rows = 0
        self._fh: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        if json_list:
            self._fh.write(b"[")

    def write(self, line: bytes) -> None:
        """Append one row."""
        if self.json_list:
            self._fh.write(b"\n" if self.rows == 0 else b",\n")
            self._fh.write(line)
        else:
            self._fh.write(line)
            self._fh.write(b"\n")
        self.rows += 1

    def append(self, chunk: Path, rows: int) -> None:
        """Append a chunk file of ``rows`` rows written by a worker (its bytes copied by the kernel where it can)."""
        if rows:
            if self.json_list:
                self._fh.write(b"\n" if self.rows == 0 else b",\n")
            self._fh.flush()
            with open(chunk, "rb") as src:
                shutil.copyfileobj(src, self._fh, 1 << 20)
            self.rows += rows
        os.unlink(chunk)

    def close(self) -> None:
        """Finish the file (close the list)."""
        if self.json_list:
            self._fh.write(b"\n]\n" if self.rows else b"]\n")
        self._fh.close()
