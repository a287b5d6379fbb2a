"""The pixels for the model: read back from the DICOM (or a 16-bit PNG) equal to what the reader
gives for the original file; and ``imaging_compact_arrays`` for arrays stored as float32 before."""

from __future__ import annotations

import io
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image as PILImage
from pydicom.uid import RLELossless

from apps.core import storage
from apps.imaging import services
from apps.imaging.models import Image
from ml import imaging
from tests.apps.imaging.conftest import stored_files
from tests.apps.imaging.dicoms import dicom_bytes, gradient, jpeg_bytes, png_bytes
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def ingest(lab, user, name, data):
    return services.image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=name, size=len(data)
    ).image


def served_array(user, image) -> np.ndarray:
    response = client_for(user).get(f"/api/v1/images/{image.pk}/array/")
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    return np.load(io.BytesIO(b"".join(response.streaming_content)), allow_pickle=False)


DICOMS = {
    "12-bit window": lambda: dicom_bytes(gradient(30, 20), bits_stored=12, window=(2000, 3000)),
    "monochrome1": lambda: dicom_bytes(gradient(30, 20, seed=1), photometric="MONOCHROME1"),
    "rescale": lambda: dicom_bytes(gradient(30, 20, seed=2), slope=2.0, intercept=-1024),
    "voi lut": lambda: dicom_bytes(
        gradient(30, 20, maximum=255, seed=3), voi_lut=(0, 16, list(range(0, 65536, 256)))
    ),
    "signed": lambda: dicom_bytes(
        gradient(30, 20, seed=4).astype(np.int16) - 2000, signed=True, bits_stored=16
    ),
    "rle": lambda: dicom_bytes(gradient(30, 20, seed=5), transfer_syntax=RLELossless),
    "8-bit": lambda: dicom_bytes(gradient(30, 20, maximum=255, dtype=np.uint8, seed=6)),
}


@pytest.mark.parametrize("kind", list(DICOMS), ids=list(DICOMS))
def test_a_dicoms_array_is_read_from_its_deidentified_dicom_exactly(personas, media, kind):
    data = DICOMS[kind]()
    image = ingest(personas.lab_a, personas.admin_a, "x.dcm", data)
    assert image.array_path == image.dicom_path and len(stored_files(media)) == 3
    expected, _ = imaging.read_dicom(io.BytesIO(data))
    np.testing.assert_array_equal(services.image_array(image=image), expected)
    array = served_array(personas.viewer_a, image)
    assert array.dtype == np.float32 and array.shape == (30, 20)
    np.testing.assert_array_equal(array, expected)


RASTERS = {
    "png 16-bit": lambda: png_bytes(gradient(30, 20, maximum=65535, seed=7)),
    "png 8-bit": lambda: png_bytes(gradient(30, 20, maximum=255, dtype=np.uint8, seed=8)),
    "jpeg": lambda: jpeg_bytes(gradient(32, 24, maximum=255, dtype=np.uint8, seed=9)),
}


@pytest.mark.parametrize("kind", list(RASTERS), ids=list(RASTERS))
def test_a_png_or_jpeg_keeps_its_pixels_in_a_16_bit_png_exactly(personas, media, kind):
    data = RASTERS[kind]()
    name = "x.jpg" if kind == "jpeg" else "x.png"
    image = ingest(personas.lab_a, personas.admin_a, name, data)
    assert image.array_path.endswith(".png") and "/array/" in image.array_path
    with PILImage.open(media / image.array_path) as stored:
        assert stored.mode == "I;16"  # 2 bytes per pixel at most, before compression
    expected, _ = imaging.read_raster(io.BytesIO(data))
    np.testing.assert_array_equal(served_array(personas.viewer_a, image), expected)


def test_a_float_array_is_kept_within_half_a_16_bit_step():
    rng = np.random.default_rng(0)
    array = rng.random((40, 30), dtype=np.float32)
    with services.pixels.array_png(array) as png:
        back, _ = imaging.read_raster(png)
    assert back.dtype == np.float32
    assert float(np.max(np.abs(back - array))) <= 0.5 / 65535 + 1e-7


# --- imaging_compact_arrays ----------------------------------------------------------------


def make_legacy(image: Image, array: np.ndarray) -> str:
    """Store ``array`` as the float32 .npy of before and point the image at it."""
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    name = storage.put(
        app="imaging", lab_id=image.lab_id, kind="array", ext="npy", fh=io.BytesIO(out.getvalue())
    ).name
    Image.objects.filter(pk=image.pk).update(array_path=name)
    image.refresh_from_db()
    return name


def compact(*args) -> str:
    out = StringIO()
    call_command("imaging_compact_arrays", *args, stdout=out)
    return out.getvalue()


def test_compaction_rewrites_legacy_arrays_and_deletes_them_after_commit(
    personas, media, django_capture_on_commit_callbacks
):
    user = personas.admin_a
    dicom = ingest(personas.lab_a, user, "d.dcm", dicom_bytes(gradient(30, 20)))
    raster = ingest(personas.lab_a, user, "r.png", png_bytes(gradient(30, 20, maximum=65535)))
    # An array the DICOM no longer gives (an older reader, say): kept, as a 16-bit PNG.
    odd = ingest(personas.lab_a, user, "o.dcm", dicom_bytes(gradient(30, 20, seed=3)))
    odd_values = np.random.default_rng(1).random((30, 20), dtype=np.float32)
    legacy = {
        dicom.pk: make_legacy(dicom, services.image_array(image=dicom)),
        raster.pk: make_legacy(raster, services.image_array(image=raster)),
        odd.pk: make_legacy(odd, odd_values),
    }
    before = {pk: served_array(user, Image.objects.get(pk=pk)) for pk in legacy}
    npy_bytes = sum((media / name).stat().st_size for name in legacy.values())

    dry = compact("--dry-run")
    assert "Would rewrite 3 array(s): 1 now read from their DICOM, 2 as 16-bit PNGs" in dry
    assert {Image.objects.get(pk=pk).array_path for pk in legacy} == set(legacy.values())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = compact()
    # The rows are updated and committed first; the old files go only after the commit.
    assert all((media / name).exists() for name in legacy.values())
    for callback in callbacks:
        callback()
    assert not any((media / name).exists() for name in legacy.values())
    print("\n" + report)
    assert "Rewrote 3 array(s): 1 now read from their DICOM, 2 as 16-bit PNGs" in report
    assert f"image {dicom.pk} (d): read from its DICOM" in report
    freed = int(report.split("PNGs; ")[1].split(" bytes")[0].replace(",", ""))
    assert 0 < freed < npy_bytes

    dicom.refresh_from_db(), raster.refresh_from_db(), odd.refresh_from_db()
    assert dicom.array_path == dicom.dicom_path
    assert raster.array_path.endswith(".png") and odd.array_path.endswith(".png")
    after = {pk: served_array(user, Image.objects.get(pk=pk)) for pk in legacy}
    np.testing.assert_array_equal(after[dicom.pk], before[dicom.pk])
    np.testing.assert_array_equal(after[raster.pk], before[raster.pk])
    assert float(np.max(np.abs(after[odd.pk] - odd_values))) <= 0.5 / 65535 + 1e-7
    assert not [p for p in stored_files(media) if p.suffix == ".npy"]

    assert "Rewrote 0 array(s)" in compact()  # idempotent


def test_compaction_of_missing_arrays(personas, media, django_capture_on_commit_callbacks):
    dicom = ingest(personas.lab_a, personas.admin_a, "d.dcm", dicom_bytes(gradient(8, 8)))
    raster = ingest(personas.lab_a, personas.admin_a, "r.png", png_bytes(np.zeros((4, 4), "u1")))
    for image in (dicom, raster):
        storage.delete(make_legacy(image, np.zeros((2, 2))))
    with django_capture_on_commit_callbacks(execute=True):
        report = compact("--lab", personas.lab_a.slug)
    assert "1 now read from their DICOM, 0 as 16-bit PNGs" in report and "1 unreadable" in report
    dicom.refresh_from_db(), raster.refresh_from_db()
    assert dicom.array_path == dicom.dicom_path and raster.array_path.endswith(".npy")
    assert "No lab 'nope'" in _error(lambda: compact("--lab", "nope"))


def _error(call) -> str:
    from django.core.management import CommandError

    with pytest.raises(CommandError) as err:
        call()
    return str(err.value)
