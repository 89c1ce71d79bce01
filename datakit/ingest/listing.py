"""The identity of a source folder, cheap enough to compute on every `datakit build`: names, sizes and mtimes.

Hashing the bytes of 377,110 DICOM files to decide whether ingest can skip would cost more than ingest itself.
Instead every file's relative path, size and modification time go into a hash: a changed, added, removed or
renamed file changes it. A copied source tree reads as changed (new mtimes), so ingest runs again, and its tables
come out with the same content: the stages after it still skip.

The walk is what costs: ``os.scandir`` gives each entry's type from the directory read, so only files are
stat'ed. 605,000 files in 290,000 folders take about 5 s with a warm cache on one core (benchmarks/build.py's
rebuild). Walking subtrees in threads was measured slower (7 s with 2 threads, 10 s with 8: the per-entry Python
work holds the GIL and the system calls then contend), so the walk is one thread.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _entries(folder: str) -> tuple[list[tuple[str, int, int]], list[str]]:
    """(name, size, mtime_ns) of the files in ``folder`` and the names of its subfolders, both sorted."""
    files, dirs = [], []
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.is_dir():
                        dirs.append(e.name)
                    else:
                        st = e.stat()
                        files.append((e.name, st.st_size, st.st_mtime_ns))
                except OSError:  # removed while we looked: absent from the listing
                    continue
    except OSError:
        pass
    files.sort()
    dirs.sort()
    return files, dirs


def _lines(rel: str, files: list[tuple[str, int, int]]) -> bytes:
    return "".join(f"{rel}/{n}:{s}:{m}\n" for n, s, m in files).encode()


def _subtree(root: str, rel: str) -> bytes:
    """The digest of one subtree's listing (depth first, sorted)."""
    h = hashlib.blake2b(digest_size=16)
    stack = [rel]
    while stack:
        here = stack.pop()
        files, dirs = _entries(os.path.join(root, here))
        h.update(f"D {here}\n".encode())
        h.update(_lines(here, files))
        stack.extend(f"{here}/{d}" for d in reversed(dirs))
    return h.digest()


def source_listing(root: Path) -> str:
    """A hex digest of every file below ``root`` (relative path, size, mtime), in sorted depth-first order."""
    return _subtree(str(root), ".").hex()
