"""DICOM pixels → display-ready 8-bit grey levels (as MIMIC-CXR-JPG converts), and the numpy maths behind it.

The steps, in order (``dicom_to_uint8``):

1. keep only the stored bits — ``BitsStored`` bits ending at ``HighBit`` — and sign-extend them when
   ``PixelRepresentation`` is 1: some writers leave overlay bits or garbage above them. pydicom's own
   correction assumes ``HighBit = BitsStored - 1``; this one follows ``HighBit``;
2. modality transform: the Modality LUT Sequence, else ``RescaleSlope`` / ``RescaleIntercept`` (pydicom's
   ``apply_modality_lut``);
3. VOI transform, only when asked: a window given in the config overrides the file; with ``voi_lut`` the
   file's VOI LUT Sequence is used, else its WindowCenter/Width (LINEAR, LINEAR_EXACT or SIGMOID), through
   pydicom's ``apply_voi_lut`` / ``apply_windowing``. A VOI output has a fixed range (the window's output
   range, or the LUT's own) and that range maps to 0..255.
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


def _voi_dataset(ds: Any, override: tuple[float, float] | None) -> Any:
    """The elements pydicom's VOI functions read, each reduced to one clean value.

    Real files carry multi-valued or unreadable DS values (several windows, unparseable text); pydicom reads the
    first of several windows but fails on text it cannot parse, which would reject an image for its header.
    """
    from pydicom.dataset import Dataset

    out = Dataset()
    out.PhotometricInterpretation = "MONOCHROME2"  # inversion is step 4, after the VOI
    out.BitsStored = int(ds.get("BitsStored") or 16)
    out.PixelRepresentation = int(ds.get("PixelRepresentation") or 0)
    if ds.get("ModalityLUTSequence"):
        out.ModalityLUTSequence = ds.ModalityLUTSequence
    else:
        out.RescaleSlope = _first_number(ds.get("RescaleSlope"), 1.0)
        out.RescaleIntercept = _first_number(ds.get("RescaleIntercept"), 0.0)
    center, width = override if override is not None else (
        _first_number(ds.get("WindowCenter"), float("nan")), _first_number(ds.get("WindowWidth"), float("nan")))
    if np.isfinite(center) and np.isfinite(width):
        out.WindowCenter, out.WindowWidth = float(center), max(float(width), 1.0)
        out.VOILUTFunction = "LINEAR" if override is not None else (
            str(ds.get("VOILUTFunction") or "LINEAR").strip().upper())
    if override is None and ds.get("VOILUTSequence"):
        out.VOILUTSequence = ds.VOILUTSequence
    return out


def _window_range(vds: Any) -> tuple[float, float]:
    """The output range of pydicom's ``apply_windowing`` for this data set (PS3.3 C.11.2.1.2)."""
    if vds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(vds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(vds.BitsStored)
    lo, hi = (0.0, 2.0**bits - 1) if vds.PixelRepresentation == 0 else (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    slope, intercept = float(vds.get("RescaleSlope", 1.0)), float(vds.get("RescaleIntercept", 0.0))
    ends = sorted((lo * slope + intercept, hi * slope + intercept))
    return ends[0], ends[1]


def apply_voi(values: np.ndarray, ds: Any, *, use_file_voi: bool, override: tuple[float, float] | None):
    """VOI output mapped to [0, 1] by pydicom's own transforms, or None when no VOI applies (step 3)."""
    from pydicom.pixels import apply_voi_lut, apply_windowing

    if override is None and not use_file_voi:
        return None
    vds = _voi_dataset(ds, override)
    if "VOILUTSequence" in vds:
        item = vds.VOILUTSequence[0]
        value = item.LUTData
        table = np.frombuffer(value, dtype="<u2") if isinstance(value, (bytes, bytearray)) else np.asarray(value)
        if table.size == 0:
            raise ValueError("the VOI LUT Sequence has an empty LUTData")
        out = apply_voi_lut(np.rint(values).astype(np.int64), vds, prefer_lut=True)
        lo, hi = float(table.min()), float(table.max())
    elif "WindowCenter" in vds:
        out = apply_windowing(values, vds)
        lo, hi = _window_range(vds)
    else:
        return None
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    return ((np.asarray(out, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)


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
    from pydicom.pixels import apply_modality_lut

    values = np.asarray(apply_modality_lut(arr, _voi_dataset(ds, None)), dtype=np.float32)
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
