"""Say in plain words what a file that does not decode holds, instead of a decoder's internals."""

from __future__ import annotations

import re

# What a file starts with → what it is. Checked in order; the first match wins.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG"),
    (b"\xff\xd8\xff", "a JPEG"),
    (b"II*\x00", "a TIFF"),
    (b"MM\x00*", "a TIFF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"version https://git-lfs", "a Git LFS pointer, not the file itself (run `git lfs pull`)"),
)
_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def kind_of(data: bytes) -> str:
    """What the bytes look like: a known format, text (an HTML error page?), or unknown binary data."""
    if not data:
        return "an empty file (0 bytes)"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[128:132] == b"DICM":
        return "a DICOM file"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML or XML page, not an image (a login or error page saved instead of the file?)"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data that is no image format datakit knows (it starts with {data[:8].hex(' ')})"
    return "text, not an image"


def problem(data: bytes, err: BaseException) -> str:
    """One phrase for why ``data`` failed to decode with ``err``: what the file is and what is wrong."""
    size = f"{len(data):,} bytes"
    what = kind_of(data)
    detail = _OBJECT_REPR.sub("", str(err)).strip().rstrip(":")
    if "truncated" in detail.lower() or isinstance(err, EOFError):
        return f"it is {what} of {size} that ends early (cut off during download or copy)"
    if not data or "cannot identify image file" in detail or not detail:
        return f"it is {what} ({size})"
    return f"it is {what} of {size} that does not decode ({type(err).__name__}: {detail})"
