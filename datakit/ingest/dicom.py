"""DICOM pixels → display-ready 8-bit grey levels (FACTS.md §2.5), and the numpy maths behind it.

The steps, in order (``dicom_to_uint8``):

1. keep only the stored bits — ``BitsStored`` bits ending at ``HighBit`` — and sign-extend them when
   ``PixelRepresentation`` is 1: some writers leave overlay bits or garbage above them. pydicom's own
   correction assumes ``HighBit = BitsStored - 1``; this one follows ``HighBit``;
2. modality transform: the Modality LUT Sequence, else ``RescaleSlope`` / ``RescaleIntercept``;
3. VOI transform, only when asked: a window given in the config overrides the file; with ``voi_lut`` the
   file's VOI LUT Sequence is used, else its WindowCenter/Width (LINEAR, LINEAR_EXACT or SIGMOID). A VOI
   output has a fixed range (window → [0, 1], LUT → its own output range) and that range maps to 0..255.
   Without VOI, the image's own min..max maps to 0..255: the MIMIC-CXR-JPG convention (no window, no LUT);
4. MONOCHROME1 (minimum = white) is inverted, so every output reads the usual way: air dark, bone bright.

Only the first frame is decoded: a chest radiograph is one image, and a multi-frame file's first frame is it.
A file that cannot be used raises :class:`ImageRejected` with a quarantine reason code.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from datakit.ingest import sniff

CODECS_HINT = "pip install 'datakit[codecs]'"


class ImageRejected(Exception):
    """One image cannot be converted; ``code`` is the quarantine reason, the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------------------
# grey-level maths (numpy only)


def stored_values(arr: np.ndarray, bits_stored: int, high_bit: int, signed: bool) -> np.ndarray:
    """Keep the ``bits_stored`` bits that end at ``high_bit``; sign-extend them when ``signed``."""
    bits_allocated = arr.dtype.itemsize * 8
    if not 0 < bits_stored <= bits_allocated:
        return arr
    if not bits_stored - 1 <= high_bit < bits_allocated:
        high_bit = bits_stored - 1  # an impossible HighBit: assume the usual layout
    if bits_stored == bits_allocated:
        return arr
    raw = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    shift = high_bit + 1 - bits_stored
    values = (raw >> shift) if shift else raw.copy()
    values &= (1 << bits_stored) - 1
    if not signed:
        return values
    sign = 1 << (bits_stored - 1)
    return (values.astype(np.int32) ^ sign) - sign


def window(arr: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """A DICOM VOI window (PS3.3 C.11.2.1.2–3) as float32 in [0, 1]."""
    x = arr.astype(np.float32, copy=False)
    if function == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / max(width, 1e-6)))
    elif function == "LINEAR_EXACT":
        out = (x - center) / max(width, 1e-6) + 0.5
    elif width <= 1:
        out = (x > center - 0.5).astype(np.float32)
    else:
        out = (x - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def to_uint8(arr: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map ``lo..hi`` (default: the image's min..max) linearly to 0..255; a constant image becomes all 0."""
    x = arr.astype(np.float32, copy=False)
    lo = float(x.min()) if lo is None else lo
    hi = float(x.max()) if hi is None else hi
    if not hi > lo:
        return np.zeros(x.shape, dtype=np.uint8)
    scaled = (x - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    np.clip(scaled, 0, 255, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.uint8)


def voi_lut(arr: np.ndarray, item: Any) -> np.ndarray:
    """Apply one VOI LUT Sequence item; the LUT's own output range maps to [0, 1]."""
    n, first, _bits = (int(v) for v in item.LUTDescriptor)
    n = n or 65536  # PS3.3 C.11.2.1.1: 0 entries means 2**16
    value = item.LUTData
    if isinstance(value, (bytes, bytearray)):
        table = np.frombuffer(value, dtype="<u2")[:n].astype(np.float32)
    else:
        table = np.atleast_1d(np.asarray(value, dtype=np.float32))[:n]
    if table.size == 0:
        raise ValueError("the VOI LUT Sequence has an empty LUTData")
    index = np.clip(np.rint(arr) - first, 0, table.size - 1).astype(np.intp)
    lo, hi = float(table.min()), float(table.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return (table[index] - np.float32(lo)) * np.float32(1.0 / (hi - lo))


def _first_number(value: Any, default: float) -> float:
    """The first value of a DS/IS element (possibly multi-valued); ``default`` when absent or unreadable."""
    try:
        if value is None or value == "":
            return default
        if not isinstance(value, (int, float, str)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return default


def apply_voi(values: np.ndarray, ds: Any, *, use_file_voi: bool, override: tuple[float, float] | None):
    """VOI output in [0, 1], or None when no VOI transform applies (step 3)."""
    if override is not None:
        return window(values, *override)
    if not use_file_voi:
        return None
    seq = ds.get("VOILUTSequence")
    if seq:
        return voi_lut(values, seq[0])
    center = _first_number(ds.get("WindowCenter"), float("nan"))
    width = _first_number(ds.get("WindowWidth"), float("nan"))
    if np.isfinite(center) and np.isfinite(width):
        function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
        return window(values, center, width, function)
    return None


def dicom_to_uint8(
    arr: np.ndarray, ds: Any, *, use_file_voi: bool = False, override: tuple[float, float] | None = None
) -> np.ndarray:
    """Decoded pixels of one frame → 8-bit grey levels, steps 1–4 of the module docstring."""
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3:  # colour (RGB after pydicom's YBR conversion): BT.601 luma; grey-scale LUTs don't apply
        return to_uint8(arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
    if arr.dtype.kind in "iu":
        bits_stored = int(ds.get("BitsStored") or arr.dtype.itemsize * 8)
        high_bit = ds.get("HighBit")
        high_bit = bits_stored - 1 if high_bit is None else int(high_bit)
        arr = stored_values(arr, bits_stored, high_bit, int(ds.get("PixelRepresentation") or 0) == 1)
    if ds.get("ModalityLUTSequence"):
        from pydicom.pixels import apply_modality_lut

        values = apply_modality_lut(arr, ds).astype(np.float32)
    else:
        values = arr.astype(np.float32)
        slope = _first_number(ds.get("RescaleSlope"), 1.0)
        intercept = _first_number(ds.get("RescaleIntercept"), 0.0)
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
    voi = apply_voi(values, ds, use_file_voi=use_file_voi, override=override)
    img = to_uint8(values) if voi is None else to_uint8(voi, 0.0, 1.0)
    if photometric == "MONOCHROME1":
        np.subtract(255, img, out=img)
    return img


# ------------------------------------------------------------------------------------------------------------
# reading and decoding


def _read(data: bytes, path: str) -> Any:
    """Parse a DICOM file; a file without the 128-byte preamble is read when it starts like a data set."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError as err:
        if data[:2] not in (b"\x02\x00", b"\x08\x00"):  # group 0002 or 0008, little endian
            raise ImageRejected(
                "corrupt_image",
                f"{path} is not a DICOM file (no 'DICM' marker at byte 128, no data set at the start); "
                "check that the right file was downloaded, or remove it",
            ) from err
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if "TransferSyntaxUID" not in ds.file_meta:
            implicit = ds.original_encoding[0]
            ds.file_meta.TransferSyntaxUID = (
                pydicom.uid.ImplicitVRLittleEndian if implicit else pydicom.uid.ExplicitVRLittleEndian
            )
        return ds


def _cut_short(ds: Any) -> str | None:
    """The first element whose value is shorter than its declared length (the file was cut), if any."""
    for tag in ds.keys():
        elem = ds.get_item(tag)
        length, value = getattr(elem, "length", None), getattr(elem, "value", None)
        if isinstance(value, (bytes, bytearray)) and length not in (None, 0xFFFFFFFF) and len(value) < length:
            return f"({tag.group:04X},{tag.element:04X}) holds {len(value)} of its {length} bytes"
    return None


def _check_decoder(ds: Any, path: str) -> None:
    from pydicom.pixels import get_decoder

    tsyntax = ds.file_meta.get("TransferSyntaxUID")
    if tsyntax is None:
        return
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as err:
        raise ImageRejected(
            "unsupported_compression",
            f"{path} uses transfer syntax {tsyntax} ({tsyntax.name}), which pydicom cannot decode; "
            f"try {CODECS_HINT}, or convert the file first (`gdcmconv --raw` from GDCM)",
        ) from err
    if not decoder.is_available:
        options = "; ".join(decoder.missing_dependencies)
        raise ImageRejected(
            "unsupported_compression",
            f"{path} is compressed as {tsyntax.name} ({tsyntax}) and no installed decoder reads it "
            f"(any of: {options}); install the decoders with {CODECS_HINT}",
        )


def decode(data: bytes, path: str) -> tuple[np.ndarray, Any]:
    """The first frame's pixels (unused bits untouched) and the data set; a bad file raises ImageRejected."""
    from pydicom.pixels import pixel_array

    try:
        ds = _read(data, path)
    except ImageRejected:
        raise
    except Exception as err:  # pydicom raises many kinds of exception on damaged files
        raise ImageRejected("corrupt_image", f"cannot parse {path} as DICOM: {sniff.problem(data, err)}; "
                            "download the file again") from err
    short = _cut_short(ds)
    if short:
        raise ImageRejected("corrupt_image", f"{path} is truncated: element {short}; download the file again")
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageRejected(
            "no_pixel_data",
            f"{path} has no Pixel Data element, so it holds no image (a report, presentation state or "
            "header-only object saved as .dcm?); replace it with the image file, or remove it",
        )
    _check_decoder(ds, path)
    try:
        arr = pixel_array(ds, index=0, correct_unused_bits=False)
    except Exception as err:
        raise ImageRejected(
            "corrupt_image",
            f"cannot decode the pixels of {path}: {sniff.problem(data, err)}; "
            "the file is damaged or incomplete: download it again",
        ) from err
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ImageRejected("corrupt_image", f"{path} decodes to an array of shape {arr.shape}, not an image")
    return arr, ds
