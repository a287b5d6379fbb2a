"""ml.imaging: DICOM reading (LUTs, windows, MONOCHROME1, bit depths, compression),
de-identification, PNG/JPEG reading and previews, checked on real files built with pydicom."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, JPEG2000Lossless, RLELossless

from ml import imaging
from ml.imaging import ImageError
from tests.apps.imaging.dicoms import (
    NESTED_NAME,
    PHI,
    PRIVATE_VALUE,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    dicom_bytes,
    gradient,
    jpeg_bytes,
    make_dicom,
    png_bytes,
)

KEY_A, KEY_B = b"lab-a-secret-key", b"lab-b-secret-key"


def read(data: bytes):
    return imaging.read_dicom(io.BytesIO(data))


def test_8bit_monochrome2_without_window_is_min_max_scaled():
    px = np.array([[10, 20], [30, 110]], dtype=np.uint8)
    array, meta = read(dicom_bytes(px))
    assert array.dtype == np.float32 and array.shape == (2, 2)
    np.testing.assert_allclose(array, [[0.0, 0.1], [0.2, 1.0]], atol=1e-6)
    assert meta["voi"] == "minmax" and meta["bits_stored"] == 8
    assert (meta["width"], meta["height"]) == (2, 2)
    assert meta["pixel_spacing"] == [0.139, 0.139] and meta["view_position"] == "PA"


def test_12_bits_in_16_with_window_center_and_width():
    px = np.array([[0, 1000, 1500], [2000, 2047, 4095]], dtype=np.uint16)
    array, meta = read(dicom_bytes(px, bits_stored=12, window=(1500, 1001)))
    # Linear window (PS3.3 C.11.2.1.2): ((x - (c - 0.5)) / (w - 1) + 0.5) clipped to [0, 1].
    expected = np.clip((px - 1499.5) / 1000 + 0.5, 0, 1)
    np.testing.assert_allclose(array, expected, atol=1e-6)
    assert array[0, 0] == 0.0 and array[1, 0] == 1.0 and array[0, 2] == pytest.approx(0.5005)
    assert meta["voi"] == "window" and meta["bits_stored"] == 12
    assert meta["window_center"] == 1500 and meta["window_width"] == 1001


def test_16bit_rescale_slope_intercept_then_window():
    px = np.array([[0, 100], [200, 65535]], dtype=np.uint16)
    # Modality values: 2 * x - 100 -> -100, 100, 300, 130970. Window c=100, w=401.
    array, _ = read(dicom_bytes(px, slope=2.0, intercept=-100, window=(100, 401)))
    modality = 2.0 * px - 100
    np.testing.assert_allclose(array, np.clip((modality - 99.5) / 400 + 0.5, 0, 1), atol=1e-6)


def test_signed_pixels_with_rescale_and_min_max():
    px = np.array([[-1000, 0], [1000, 3000]], dtype=np.int16)
    array, _ = read(dicom_bytes(px, bits_stored=16, signed=True, slope=1.0, intercept=1024))
    np.testing.assert_allclose(array, (px + 1000) / 4000.0, atol=1e-6)


def test_monochrome1_is_inverted():
    px = np.array([[0, 1023], [512, 256]], dtype=np.uint16)
    mono2, _ = read(dicom_bytes(px, bits_stored=10))
    mono1, meta = read(dicom_bytes(px, bits_stored=10, photometric="MONOCHROME1"))
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)
    assert mono1[0, 0] == 1.0  # lowest value is white in MONOCHROME1
    assert meta["photometric_interpretation"] == "MONOCHROME1"


def test_monochrome1_with_window():
    px = np.array([[100, 300]], dtype=np.uint16)
    array, _ = read(dicom_bytes(px, bits_stored=12, photometric="MONOCHROME1", window=(200, 101)))
    np.testing.assert_allclose(array, [[1.0, 0.0]], atol=1e-6)


def test_voi_lut_sequence_wins_over_window():
    px = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint16)
    lut = [0, 100, 200, 300, 400, 500, 600, 1023]  # descriptor: 8 entries, first 0, 10 bits
    array, meta = read(dicom_bytes(px, bits_stored=12, window=(0, 1), voi_lut=(0, 10, lut)))
    np.testing.assert_allclose(array.ravel(), np.array(lut) / 1023.0, atol=1e-6)
    assert meta["voi"] == "lut"


def test_voi_lut_clamps_outside_its_range():
    px = np.array([[0, 10, 11, 12, 40]], dtype=np.uint16)
    lut = [0, 2000, 4095]  # first mapped value 10, 12 bits
    array, _ = read(dicom_bytes(px, bits_stored=12, voi_lut=(10, 12, lut)))
    np.testing.assert_allclose(array, [[0, 0, 2000 / 4095, 1, 1]], atol=1e-6)


def test_sigmoid_window():
    px = np.array([[100, 200, 300]], dtype=np.uint16)
    ds = make_dicom(px, bits_stored=12, window=(200, 100))
    ds.VOILUTFunction = "SIGMOID"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    array, _ = read(buf.getvalue())
    np.testing.assert_allclose(
        array, 1 / (1 + np.exp(-4 * (px.astype(float) - 200) / 100)), atol=1e-6
    )


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=lambda s: s.name)
def test_compressed_transfer_syntaxes_decode_losslessly(syntax):
    px = gradient(64, 48, maximum=4095)
    plain, meta_plain = read(dicom_bytes(px, bits_stored=12))
    packed, meta = read(dicom_bytes(px, bits_stored=12, transfer_syntax=syntax))
    np.testing.assert_array_equal(packed, plain)
    assert meta["transfer_syntax"] == syntax
    assert meta["pixel_sha256"] == meta_plain["pixel_sha256"]


def test_unsupported_transfer_syntax_is_refused_clearly():
    data = bytearray(dicom_bytes(gradient(4, 4), phi=False))
    ds = dcmread(io.BytesIO(bytes(data)))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00" * 16])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    with pytest.raises(ImageError, match="transfer syntax .*MPEG2"):
        read(buf.getvalue())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a DICOM file"),
        (b"hello world", "not a DICOM file"),
        (png_bytes(np.zeros((4, 4), np.uint8)), "not a DICOM file"),
    ],
)
def test_non_dicom_is_refused(data, message):
    with pytest.raises(ImageError, match=message):
        read(data)


def test_truncated_dicom_is_refused():
    data = dicom_bytes(gradient(64, 64))
    with pytest.raises(ImageError, match="truncated or damaged|cannot be decoded"):
        read(data[: len(data) // 2])


def test_zero_by_zero_dicom_is_refused():
    with pytest.raises(ImageError, match=r"empty image \(0 x 0"):
        read(dicom_bytes(np.zeros((0, 0), np.uint16), rows=0, columns=0))


def test_color_dicom_is_refused():
    ds = make_dicom(gradient(4, 4))
    ds.PhotometricInterpretation = "RGB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    with pytest.raises(ImageError, match="only grayscale"):
        read(buf.getvalue())


def test_sniff_format_ignores_names():
    assert imaging.sniff_format(io.BytesIO(dicom_bytes(gradient(2, 2)))) == "dicom"
    assert imaging.sniff_format(io.BytesIO(png_bytes(np.zeros((2, 2), np.uint8)))) == "png"
    assert imaging.sniff_format(io.BytesIO(jpeg_bytes(np.zeros((8, 8), np.uint8)))) == "jpeg"
    assert imaging.sniff_format(io.BytesIO(b"PK\x03\x04rest")) == "zip"
    assert imaging.sniff_format(io.BytesIO(b"")) is None


# --- De-identification -----------------------------------------------------------------------


def deidentified_bytes(key=KEY_A, **kwargs) -> tuple[bytes, list[str]]:
    ds = make_dicom(gradient(8, 8), **kwargs)
    ds, removed = imaging.deidentify(ds, lab_key=key)
    buf = io.BytesIO()
    imaging.write_dicom(ds, buf)
    return buf.getvalue(), removed


def test_deidentified_file_contains_no_phi_value():
    data, removed = deidentified_bytes()
    for keyword, value in PHI.items():
        assert value.encode() not in data, keyword
    for value in (PRIVATE_VALUE, NESTED_NAME, "REQ-998877", "ELSEWHERE_AE", "ACME PRIVATE"):
        assert value.encode() not in data, value
    ds = dcmread(io.BytesIO(data))
    assert ds.PatientIdentityRemoved == "YES"
    assert "PS3.15 Basic Profile" in ds.DeidentificationMethod
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert ds.PatientName == "" and ds.PatientID == ""
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert ds.Manufacturer == "Acme Imaging" and ds.ViewPosition == "PA"  # not identifying
    # Names only in the audit list, never values.
    for name in ("PatientName", "PatientBirthDate", "InstitutionName", "AccessionNumber",
                 "ReferringPhysicianName", "OperatorsName", "SeriesDate",
                 "RequestAttributesSequence", "SourceApplicationEntityTitle",
                 "private tag (0009,1011)", "private tag (0011,1001)"):  # fmt: skip
        assert name in removed, name
    assert not any(value in " ".join(removed) for value in PHI.values())


def test_uids_are_remapped_deterministically_per_lab():
    data_a, _ = deidentified_bytes(KEY_A)
    again_a, _ = deidentified_bytes(KEY_A)
    data_b, _ = deidentified_bytes(KEY_B)
    a, a2, b = (dcmread(io.BytesIO(d)) for d in (data_a, again_a, data_b))
    for keyword, original in [
        ("StudyInstanceUID", STUDY_UID),
        ("SeriesInstanceUID", SERIES_UID),
        ("SOPInstanceUID", SOP_UID),
    ]:
        uid = getattr(a, keyword)
        assert uid != original and uid.startswith("2.25.") and len(uid) <= 64
        assert uid == getattr(a2, keyword)  # deterministic within a lab
        assert uid != getattr(b, keyword)  # unlinkable across labs
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert a.SOPClassUID == make_dicom(gradient(2, 2)).SOPClassUID  # class UIDs are kept
    assert a.StudyInstanceUID == imaging.uid_remap(STUDY_UID, lab_key=KEY_A)
    for original in (STUDY_UID, SERIES_UID, SOP_UID):
        assert original.encode() not in data_a


def test_burned_in_annotation_is_kept_and_reported():
    data, _ = deidentified_bytes(burned_in=True)
    assert dcmread(io.BytesIO(data)).BurnedInAnnotation == "YES"
    _, meta = read(dicom_bytes(gradient(4, 4), burned_in=True))
    assert meta["burned_in_annotation"] is True


def test_deidentified_pixels_are_unchanged():
    ds = make_dicom(gradient(8, 8))
    before = ds.pixel_array.copy()
    ds, _ = imaging.deidentify(ds, lab_key=KEY_A)
    np.testing.assert_array_equal(ds.pixel_array, before)


# --- PNG / JPEG and previews -------------------------------------------------------------------


def test_png_8_and_16_bit_and_rgb():
    px8 = np.array([[0, 51], [204, 255]], dtype=np.uint8)
    array, meta = imaging.read_raster(io.BytesIO(png_bytes(px8)))
    np.testing.assert_allclose(array, px8 / 255.0, atol=1e-6)
    assert meta["format"] == "png" and (meta["width"], meta["height"]) == (2, 2)
    px16 = np.array([[0, 65535], [32768, 1]], dtype=np.uint16)
    array16, meta16 = imaging.read_raster(io.BytesIO(png_bytes(px16)))
    np.testing.assert_allclose(array16, px16 / 65535.0, atol=1e-6)
    assert meta16["bits_stored"] == 16
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 1] = 200
    gray, _ = imaging.read_raster(io.BytesIO(png_bytes(rgb)))
    np.testing.assert_allclose(gray, round(200 * 0.587) / 255.0, atol=1 / 255)


def test_jpeg_reads_close_to_its_source():
    px = gradient(32, 32, maximum=255, dtype=np.uint8)
    array, meta = imaging.read_raster(io.BytesIO(jpeg_bytes(px, quality=100)))
    assert meta["format"] == "jpeg"
    assert np.abs(array - px / 255.0).max() < 0.05


def test_damaged_png_is_refused():
    data = png_bytes(gradient(32, 32, maximum=255, dtype=np.uint8))
    with pytest.raises(ImageError, match="PNG"):
        imaging.read_raster(io.BytesIO(data[:60]))


def test_render_preview_downscales_and_keeps_aspect():
    array = np.linspace(0, 1, 300 * 200, dtype=np.float32).reshape(300, 200)
    png = imaging.render_preview(array, max_side=150)
    img = PILImage.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "L" and img.size == (100, 150)
    small = PILImage.open(io.BytesIO(imaging.render_preview(array[:10, :20])))
    assert small.size == (20, 10)  # never upscaled
    exact = np.asarray(small)
    np.testing.assert_array_equal(exact, np.rint(array[:10, :20] * 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("name", "key"),
    [("abc123.dcm", "abc123"), ("dir/x y.PNG", "x_y"), ("noext", "noext"), ("a.b.jpeg", "a.b")],
)
def test_key_from_filename(name, key):
    assert imaging.key_from_filename(name) == key
