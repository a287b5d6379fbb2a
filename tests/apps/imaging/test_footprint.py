"""Acceptance: what is stored per image is at most 1.2 times the de-identified DICOM.

A 2500 x 3000 DICOM of 16 bits stored (a phantom chest X-ray scaled to 16 bits, with noise in
its low bits, so that nothing compresses to a trivial size) is uploaded through the API and
ingested; every byte left under MEDIA_ROOT for it is counted. Before, a float32 array of 30 MB
was stored beside the 15 MB DICOM (3.0x); now a DICOM's array is decoded from the DICOM.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom import dcmread

from apps.imaging.models import Image
from ml import imaging
from ml.synthetic import make_phantom
from tests.apps.imaging.batches import post_files, run_batch
from tests.apps.imaging.conftest import stored_files
from tests.apps.imaging.dicoms import dicom_bytes
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
LIMIT = 1.2


def full_size_dicom() -> bytes:
    phantom = make_phantom("CHF", seed=5, height=3000, width=2500)
    rng = np.random.default_rng(5)
    pixels = phantom.image.astype(np.uint32) * 16 + rng.integers(0, 16, phantom.image.shape)
    pixels = np.clip(pixels, 0, 65535).astype(np.uint16)
    center, width = phantom.window_center * 16, phantom.window_width * 16
    return dicom_bytes(pixels, bits_stored=16, window=(center, width))


def test_a_full_size_16_bit_dicom_stores_at_most_1_2_times_its_deidentified_dicom(personas, media):
    data = full_size_dicom()
    answer = post_files(personas.researcher_a, personas.lab_a, ("cxr-full.dcm", data))
    status = run_batch(personas.researcher_a, answer)
    assert status["status"] == "done" and status["created"] == 1, status
    image = Image.objects.get()
    assert (image.width, image.height, image.bits_stored) == (2500, 3000, 16)

    files = stored_files(media)  # the staged upload is gone: only the image's files are left
    names = {str(p.relative_to(media)) for p in files}
    assert names == set(image.file_paths), (names, image.file_paths)
    size = {name: (media / name).stat().st_size for name in names}
    parts = {
        "dicom": size[image.dicom_path],
        "preview": size[image.preview_path],
        "thumbnail": size[image.thumbnail_path],
        "array": 0 if image.array_path == image.dicom_path else size[image.array_path],
    }
    total = sum(size.values())
    ratio = total / parts["dicom"]
    print(f"\nstored per image: {parts}, total {total:,} bytes, {ratio:.3f}x the DICOM")
    assert parts["dicom"] > 2500 * 3000 * 2  # the pixels are all there, 2 bytes each
    assert ratio <= LIMIT, (parts, ratio)

    # The array the API serves is the float32 array read from the original file, exactly.
    response = client_for(personas.viewer_a).get(f"/api/v1/images/{image.pk}/array/")
    assert response.status_code == 200
    array = np.load(io.BytesIO(b"".join(response.streaming_content)), allow_pickle=False)
    expected, _ = imaging.read_dicom(io.BytesIO(data))
    assert array.dtype == np.float32 and array.shape == (3000, 2500)
    np.testing.assert_array_equal(array, expected)
    assert dcmread(media / image.dicom_path).PatientIdentityRemoved == "YES"
