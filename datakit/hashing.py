"""Canonical JSON and content hashes.

Every hash datakit records has a short prefix naming its format (``b2:`` = blake2b-128 of the bytes), so a later
change of algorithm can live beside old keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` with sorted keys and no insignificant whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any) -> str:
    """Hash bytes, text, or any JSON-able object (through its canonical JSON)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
    else:
        data = canonical_json(obj).encode("utf-8")
    return "b2:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def file_digest(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hash a file's bytes without holding it all in memory."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return "b2:" + h.hexdigest()


def table_digest(df: Any) -> str:
    """The identity of a polars DataFrame's content: its schema, row count and every value, in order.

    Each column is hashed value by value with polars' own hasher (about 0.3 s for 900 MB of text) and the hashes
    are folded with blake2b. Polars does not promise its hashes across versions, so the digest is computed once,
    when a stage writes the table, and stored in the file (``RunDir.write_table``); a newer polars can at worst
    make a rewritten identical table look new once.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(canonical_json([[name, str(dtype)] for name, dtype in df.schema.items()]).encode())
    h.update(str(df.height).encode())
    for name in df.columns:
        h.update(df[name].hash(seed=0).to_numpy().tobytes())
    return "t2:" + h.hexdigest()
