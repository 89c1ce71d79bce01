"""DICOM / JPG / PNG → 8-bit PNG conversion, on real files written here with pydicom and Pillow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGLosslessSV1, RLELossless, generate_uid

from datakit.config import ImageConfig
from datakit.errors import ConfigError
from datakit.hashing import file_digest
from datakit.ingest.images import convert_images, converted_name, equalize
from datakit.rundir import Quarantine, RunDir

# A compressed transfer syntax that pydicom has no decoder for, whatever is installed.
J2K_MULTICOMPONENT = "1.2.840.10008.1.2.4.92"


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    high_bit: int | None = None,
    signed: bool = False,
    syntax: str = ExplicitVRLittleEndian,
    pixel_data: bool = True,
    **elements,
) -> Path:
    """A minimal but complete DX image file; ``pixels`` is (rows, cols) or (frames, rows, cols)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1 if high_bit is None else high_bit
    ds.PixelRepresentation = 1 if signed else 0
    for key, value in elements.items():
        setattr(ds, key, value)
    if pixel_data:
        ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    if syntax == RLELossless:
        ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    elif syntax != ExplicitVRLittleEndian:
        meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\xff\xd8 not really a codestream \xff\xd9"])
    ds.save_as(path, enforce_file_format=True)
    return path


def convert(tmp_path: Path, sources: list[Path | str], previous=None, **cfg):
    """Convert the given files (ids im0, im1, ...) into tmp_path/run; returns (table, quarantine, run)."""
    run = RunDir.create(tmp_path / "run")
    df = pl.DataFrame({"image_id": [f"im{i}" for i in range(len(sources))],
                       "source_path": [str(s) for s in sources]})
    q = Quarantine("ingest")
    out = convert_images(df, run, ImageConfig(**{"workers": 1, "equalize": False, **cfg}), q, previous)
    return out, q, run


def png(run: RunDir, table: pl.DataFrame, image_id: str = "im0") -> np.ndarray:
    rel = table.filter(pl.col("image_id") == image_id)["converted_path"].item()
    with Image.open(run.root / rel) as im:
        assert im.mode == "L"
        return np.asarray(im)


def ramp(rows: int = 32, cols: int = 64, lo: int = 0, hi: int = 4095) -> np.ndarray:
    return np.tile(np.linspace(lo, hi, cols).round().astype(np.int64), (rows, 1))


def codes(q: Quarantine) -> dict[str, str]:
    return {r.key: r.code for r in q.records}


# ----------------------------------------------------------------------------------------------------
# grey levels


def test_monochrome1_is_inverted_so_air_is_dark_and_bone_bright(tmp_path):
    # MONOCHROME1: the minimum is white. Air got high stored values, bone low ones.
    stored = np.full((40, 60), 3000)
    stored[:, :20] = 4000  # air
    stored[:, 40:] = 200  # bone
    out, _, run = convert(tmp_path, [write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1")])
    img = png(run, out)
    assert img[:, :20].max() == 0 and img[:, 40:].min() == 255
    # the same values as MONOCHROME2 read the other way round
    out2, _, run2 = convert(tmp_path / "b", [write_dicom(tmp_path / "m2.dcm", stored)])
    img2 = png(run2, out2)
    assert img2[:, :20].min() == 255 and img2[:, 40:].max() == 0


def test_unused_high_bits_are_masked(tmp_path):
    clean = ramp()
    garbage = np.random.default_rng(0).integers(0, 16, clean.shape) << 12
    files = [write_dicom(tmp_path / "clean.dcm", clean), write_dicom(tmp_path / "dirty.dcm", clean | garbage)]
    out, q, run = convert(tmp_path, files)
    assert not q.records
    assert np.array_equal(png(run, out, "im0"), png(run, out, "im1"))


def test_stored_bits_below_the_high_bit_are_read_where_high_bit_says(tmp_path):
    # BitsStored 12 ending at HighBit 15: the value sits in the top 12 bits, garbage in the low 4
    values = ramp()
    shifted = (values << 4) | np.random.default_rng(1).integers(0, 16, values.shape)
    files = [write_dicom(tmp_path / "low.dcm", values),
             write_dicom(tmp_path / "top.dcm", shifted, high_bit=15)]
    out, _, run = convert(tmp_path, files)
    assert np.array_equal(png(run, out, "im0"), png(run, out, "im1"))


def test_signed_pixels_are_sign_extended(tmp_path):
    # signed 12-bit values in 16 allocated bits, the unused high bits left at 0: -1 is stored as 0x0FFF
    values = ramp(lo=-2048, hi=2047)
    raw = (values & 0x0FFF).astype(np.uint16).view(np.int16)
    out, _, run = convert(tmp_path, [write_dicom(tmp_path / "s.dcm", raw, signed=True)])
    row = png(run, out)[0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)


def test_rescale_slope_and_intercept_come_before_the_window(tmp_path):
    stored = ramp(lo=0, hi=1000, cols=101)  # stored value = 10 * column
    # modality value = 2 * stored - 1000; a window of [-500, 500] covers stored 250..750
    f = write_dicom(tmp_path / "r.dcm", stored, RescaleSlope=2, RescaleIntercept=-1000)
    out, _, run = convert(tmp_path, [f], window=(0.0, 1001.0))
    row = png(run, out)[0].astype(int)
    assert row[:25].max() == 0 and row[76:].min() == 255
    assert abs(row[50] - 128) <= 1
    # a negative slope turns the image over even without a window
    g = write_dicom(tmp_path / "neg.dcm", stored, RescaleSlope=-1, RescaleIntercept=0)
    out2, _, run2 = convert(tmp_path / "n", [g])
    row2 = png(run2, out2)[0].astype(int)
    assert row2[0] == 255 and row2[-1] == 0


def _lut_item(threshold: int) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new(0x00283006, "US", [0 if x < threshold else 4095 for x in range(4096)])
    return item


def test_voi_lut_sequence_is_applied_only_when_enabled(tmp_path):
    f = write_dicom(tmp_path / "lut.dcm", ramp(), VOILUTSequence=Sequence([_lut_item(2048)]),
                    WindowCenter=1000, WindowWidth=200)
    on, _, run_on = convert(tmp_path / "on", [f], voi_lut=True)
    off, _, run_off = convert(tmp_path / "off", [f], voi_lut=False)
    with_lut = png(run_on, on)
    assert set(np.unique(with_lut)) == {0, 255}  # the LUT (a step at 2048), preferred over the window
    assert with_lut[0, 31] == 0 and with_lut[0, 33] == 255
    assert len(np.unique(png(run_off, off))) == 64  # plain min-max of the ramp


def test_file_window_is_used_when_there_is_no_lut(tmp_path):
    f = write_dicom(tmp_path / "w.dcm", ramp(cols=4096, rows=2), WindowCenter=2048, WindowWidth=1024)
    on, _, run = convert(tmp_path, [f], voi_lut=True, max_size=4096)
    row = png(run, on)[0].astype(int)
    assert row[1535] == 0 and row[2561] == 255 and abs(row[2048] - 128) <= 1


def test_window_override_beats_the_file(tmp_path):
    f = write_dicom(tmp_path / "w.dcm", ramp(cols=4096, rows=2), WindowCenter=2048, WindowWidth=1024,
                    VOILUTSequence=Sequence([_lut_item(100)]))
    out, _, run = convert(tmp_path, [f], voi_lut=True, window=(1000.0, 200.0), max_size=4096)
    row = png(run, out)[0].astype(int)
    assert row[899] == 0 and row[1101] == 255 and abs(row[1000] - 128) <= 2


def test_window_width_below_one_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="at least 1 wide"):
        convert(tmp_path, [], window=(100.0, 0.5))


def test_equalize_matches_opencv_convention():
    # the first occupied grey level maps to 0, the last to 255, the rest by the cumulative histogram
    img = np.array([[3, 3, 4, 9]], dtype=np.uint8)
    assert equalize(img).tolist() == [[0, 0, 128, 255]]
    assert equalize(np.full((3, 3), 7, np.uint8)).tolist() == np.full((3, 3), 7).tolist()


def test_equalization_on_and_off(tmp_path):
    # most pixels crowd the dark end: equalisation spreads them over the whole range
    values = (np.linspace(0, 1, 128 * 128) ** 1.5 * 4095).round().reshape(128, 128)
    f = write_dicom(tmp_path / "e.dcm", values)
    on, _, run_on = convert(tmp_path / "on", [f], equalize=True)
    off, _, run_off = convert(tmp_path / "off", [f], equalize=False)
    eq, plain = png(run_on, on), png(run_off, off)
    assert 85 < np.median(plain) < 95  # min-max keeps the curve: 0.5 ** 1.5 * 255 = 90
    assert 120 < np.median(eq) < 136  # equalised: the median lands mid-range
    cdf = np.cumsum(np.bincount(eq.ravel(), minlength=256)) / eq.size
    assert np.abs(cdf - (np.arange(256) + 1) / 256).max() < 0.03  # a flat histogram


def test_constant_image_converts_without_dividing_by_zero(tmp_path):
    flat = np.full((20, 30), 1234)
    files = [write_dicom(tmp_path / "c2.dcm", flat),
             write_dicom(tmp_path / "c1.dcm", flat, photometric="MONOCHROME1")]
    with np.errstate(all="raise"):
        out, q, run = convert(tmp_path, files, equalize=True)
    assert not q.records
    assert png(run, out, "im0").max() == 0 and png(run, out, "im1").min() == 255


def test_resize_keeps_aspect_and_never_upscales(tmp_path):
    files = [write_dicom(tmp_path / "tall.dcm", ramp(rows=400, cols=300)),
             write_dicom(tmp_path / "wide.dcm", ramp(rows=90, cols=333)),
             write_dicom(tmp_path / "small.dcm", ramp(rows=80, cols=100))]
    out, _, run = convert(tmp_path, files, max_size=200)
    sizes = {r["image_id"]: (r["width"], r["height"], r["source_width"], r["source_height"])
             for r in out.iter_rows(named=True)}
    assert sizes == {"im0": (150, 200, 300, 400), "im1": (200, 54, 333, 90), "im2": (100, 80, 100, 80)}
    for image_id, (w, h, _, _) in sizes.items():
        assert png(run, out, image_id).shape == (h, w)


def test_multi_frame_uses_the_first_frame(tmp_path):
    frames = np.stack([ramp(), 4095 - ramp()])
    files = [write_dicom(tmp_path / "mf.dcm", frames), write_dicom(tmp_path / "one.dcm", ramp())]
    out, q, run = convert(tmp_path, files)
    assert not q.records
    assert np.array_equal(png(run, out, "im0"), png(run, out, "im1"))


def test_rle_compressed_dicom_converts_like_the_uncompressed_one(tmp_path):
    files = [write_dicom(tmp_path / "raw.dcm", ramp()),
             write_dicom(tmp_path / "rle.dcm", ramp(), syntax=RLELossless)]
    out, q, run = convert(tmp_path, files)
    assert not q.records and np.array_equal(png(run, out, "im0"), png(run, out, "im1"))


# ----------------------------------------------------------------------------------------------------
# JPG / PNG sources


def test_jpg_and_png_sources(tmp_path):
    gray = np.tile(np.linspace(0, 250, 200).round().astype(np.uint8), (160, 1))  # 200 wide, 160 high
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "c.jpg", quality=95)
    Image.fromarray(gray.astype(np.uint16) * 200).save(tmp_path / "deep.png")  # 16-bit
    sources = [tmp_path / "g.png", tmp_path / "c.jpg", tmp_path / "deep.png"]
    out, q, run = convert(tmp_path, sources, max_size=100)
    assert not q.records
    assert out.select("width", "height", "source_width", "source_height").rows() == [(100, 80, 200, 160)] * 3
    from_jpg = png(run, out, "im1").astype(int)
    assert np.all(np.diff(from_jpg[40, 2:-2]) >= -3)  # colour JPG → one grey channel, ramp preserved
    full, _, run2 = convert(tmp_path / "full", [tmp_path / "g.png", tmp_path / "deep.png"])
    assert np.array_equal(png(run2, full, "im0"), gray)  # 8-bit, no resize: grey levels kept exactly
    deep = png(run2, full, "im1")
    assert deep.min() == 0 and deep.max() == 255  # 16-bit data: min-max to 8 bit


# ----------------------------------------------------------------------------------------------------
# bad inputs


def test_truncated_dicom_is_corrupt(tmp_path):
    whole = write_dicom(tmp_path / "whole.dcm", ramp()).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(whole[: len(whole) // 2])
    out, q, _ = convert(tmp_path, [tmp_path / "cut.dcm"])
    assert out.height == 0 and codes(q) == {"im0": "corrupt_image"}
    assert "truncated" in q.records[0].message and "(7FE0,0010)" in q.records[0].message


def test_dicom_cut_inside_its_header_is_corrupt(tmp_path):
    whole = write_dicom(tmp_path / "whole.dcm", ramp(), PatientID="X" * 60).read_bytes()
    at = whole.index(b"X" * 60) + 10  # inside the value of PatientID
    (tmp_path / "cut.dcm").write_bytes(whole[:at])
    _, q, _ = convert(tmp_path, [tmp_path / "cut.dcm"])
    assert codes(q) == {"im0": "corrupt_image"} and "(0010,0020)" in q.records[0].message


def test_dicom_without_pixel_data(tmp_path):
    f = write_dicom(tmp_path / "hdr.dcm", ramp(), pixel_data=False)
    out, q, _ = convert(tmp_path, [f])
    assert out.height == 0 and codes(q) == {"im0": "no_pixel_data"}
    assert "no Pixel Data" in q.records[0].message and q.records[0].path == str(f)


def test_file_that_is_not_dicom(tmp_path):
    (tmp_path / "notes.dcm").write_text("this is a text file that somebody named .dcm\n" * 10)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    _, q, _ = convert(tmp_path, [tmp_path / "notes.dcm", tmp_path / "junk.png"])
    assert codes(q) == {"im0": "corrupt_image", "im1": "corrupt_image"}
    assert "not a DICOM file" in q.records[0].message


def test_truncated_jpg_is_corrupt(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[: len(data) // 2])
    _, q, _ = convert(tmp_path, [tmp_path / "a.jpg"])
    assert codes(q) == {"im0": "corrupt_image"}


def test_missing_file(tmp_path):
    out, q, _ = convert(tmp_path, [tmp_path / "nowhere.dcm"])
    assert out.height == 0 and codes(q) == {"im0": "missing_image"}
    assert "not on disk" in q.records[0].message


def test_compression_without_a_decoder_is_unsupported(tmp_path):
    f = write_dicom(tmp_path / "j2k-mc.dcm", ramp(), syntax=J2K_MULTICOMPONENT)
    _, q, _ = convert(tmp_path, [f])
    assert codes(q) == {"im0": "unsupported_compression"}
    assert "pip install 'datakit[codecs]'" in q.records[0].message


def test_jpeg_lossless_depends_on_the_codecs_extra(tmp_path):
    # JPEG Lossless SV1 (common in CR archives) needs pylibjpeg-libjpeg or GDCM; Pillow cannot read it
    f = write_dicom(tmp_path / "jll.dcm", ramp(), syntax=JPEGLosslessSV1)
    _, q, _ = convert(tmp_path, [f])
    if get_decoder(JPEGLosslessSV1).is_available:
        assert codes(q) == {"im0": "corrupt_image"}  # a decoder is there, but the data is fake
    else:
        assert codes(q) == {"im0": "unsupported_compression"}
        assert "JPEG Lossless" in q.records[0].message and "datakit[codecs]" in q.records[0].message


# ----------------------------------------------------------------------------------------------------
# the table: re-runs, counts, names, workers


def test_reconversion_is_skipped_when_nothing_changed(tmp_path):
    f = write_dicom(tmp_path / "a.dcm", ramp())
    first, _, run = convert(tmp_path, [f])
    target = run.root / first["converted_path"].item()
    before = os.stat(target)
    again, _, _ = convert(tmp_path, [f], previous=first)
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not written again
    assert again.equals(first)
    # a changed setting converts again (atomic replace: a new file), and so does a changed source
    resized, _, _ = convert(tmp_path, [f], previous=again, max_size=32)
    assert os.stat(target).st_ino != after.st_ino
    assert resized["convert_key"].item() != first["convert_key"].item()
    assert resized["width"].item() == 32
    write_dicom(f, ramp() // 2)
    changed, _, _ = convert(tmp_path, [f], previous=resized, max_size=32)
    assert changed["source_digest"].item() != resized["source_digest"].item()
    # a PNG deleted since the last run is made again
    target.unlink()
    convert(tmp_path, [f], previous=changed, max_size=32)
    assert target.is_file()


def test_columns_pass_through_and_counts_add_up(tmp_path):
    good = write_dicom(tmp_path / "good.dcm", ramp())
    nopix = write_dicom(tmp_path / "nopix.dcm", ramp(), pixel_data=False)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    run = RunDir.create(tmp_path / "run")
    df = pl.DataFrame({
        "image_id": ["a", "b", "c", "d", "a"],
        "study_id": ["s1", "s1", "s2", "s2", "s3"],
        "source_path": [str(p) for p in (good, nopix, tmp_path / "gone.dcm", tmp_path / "ok.png", good)],
        "view_raw": ["PA", "LATERAL", "AP", "PA", "PA"],
        "source_width": pl.Series([999, None, None, None, None], dtype=pl.Int32),
    })
    q = Quarantine("ingest")
    out = convert_images(df, run, ImageConfig(workers=1), q)
    assert out["image_id"].to_list() == ["a", "d"]
    assert out["study_id"].to_list() == ["s1", "s2"] and out["view_raw"].to_list() == ["PA", "PA"]
    assert out["source_width"].to_list() == [64, 8]  # measured from the file, not copied from the input
    assert codes(q) == {"b": "no_pixel_data", "c": "missing_image", "a": "duplicate_image"}
    counts = q.balance("image", df.height, out.height)
    assert counts == {"image_in": 5, "image_out": 2, "image_quarantined": 3}
    assert out["converted_path"].to_list() == ["images/a.png", "images/d.png"]
    assert out["source_digest"].to_list() == [file_digest(good), file_digest(tmp_path / "ok.png")]
    assert out.schema["width"] == pl.Int32 and out.schema["source_height"] == pl.Int32


def test_image_ids_become_safe_distinct_file_names():
    assert converted_name("0a1b2c3d-11111111-22222222-33333333-44444444") == (
        "0a1b2c3d-11111111-22222222-33333333-44444444.png")
    odd = [converted_name(i) for i in ("CXR1/0", "CXR1_0", "../x", "a b", "", "é")]
    assert len(set(odd)) == len(odd)
    assert all("/" not in n and not n.startswith(".") and n.endswith(".png") for n in odd)


def test_workers_give_the_same_output_as_one_process(tmp_path):
    rng = np.random.default_rng(3)
    files = [write_dicom(tmp_path / f"{i}.dcm", rng.integers(0, 4096, (48, 40)),
                         photometric=("MONOCHROME1" if i % 2 else "MONOCHROME2")) for i in range(12)]
    files.insert(5, tmp_path / "missing.dcm")
    one, q1, run1 = convert(tmp_path / "one", files, equalize=True)
    two, q2, run2 = convert(tmp_path / "two", files, equalize=True, workers=2)
    assert one.equals(two) and codes(q1) == codes(q2) == {"im5": "missing_image"}
    for rel in one["converted_path"]:
        assert (run1.root / rel).read_bytes() == (run2.root / rel).read_bytes()
