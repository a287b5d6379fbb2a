"""A lab's derived files (previews, thumbnails, stored pixels, saliency maps) stop at its quota:
an upload past it is refused with 409 (at once) or per file, and nothing is stored for it."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core import quota
from apps.imaging.models import Image, UploadBatch
from tests.apps.imaging.batches import post_files, upload
from tests.apps.imaging.conftest import stored_files
from tests.apps.imaging.dicoms import dicom_bytes, gradient, png_bytes


def _png(seed: int) -> bytes:
    return png_bytes(gradient(64, 48, maximum=255, dtype=np.uint8, seed=seed))


def test_an_image_records_the_bytes_of_its_derived_files(personas, media):
    status = upload(personas.researcher_a, personas.lab_a, ("a.png", _png(1)))
    image = Image.objects.get(pk=status["files"][0]["image"]["id"])
    derived = [image.preview_path, image.thumbnail_path, image.array_path]
    assert image.derived_bytes == sum((media / p).stat().st_size for p in derived)
    assert quota.derived_bytes(personas.lab_a.pk) == image.derived_bytes
    dicom = upload(
        personas.researcher_a, personas.lab_a, ("b.dcm", dicom_bytes(gradient(64, 48, seed=3)))
    )
    d = Image.objects.get(pk=dicom["files"][0]["image"]["id"])
    # A DICOM's pixels are its own: only the preview and thumbnail are derived.
    assert d.derived_bytes == sum(
        (media / p).stat().st_size for p in (d.preview_path, d.thumbnail_path)
    )


def test_a_file_past_the_quota_is_refused_and_nothing_of_it_stored(personas, media, settings):
    upload(personas.researcher_a, personas.lab_a, ("a.png", _png(1)))
    used = quota.derived_bytes(personas.lab_a.pk)
    settings.LAB_DERIVED_QUOTA_BYTES = used + 100  # room for nothing more
    before = stored_files(media)
    status = upload(personas.researcher_a, personas.lab_a, ("b.png", _png(2)))
    [row] = status["files"]
    assert row["status"] == "rejected" and "quota" in row["message"], row
    assert "LAB_DERIVED_QUOTA_BYTES" in row["message"]
    assert Image.objects.filter(lab=personas.lab_a).count() == 1
    assert stored_files(media) == before  # nothing of the refused image is left


def test_an_upload_to_a_lab_at_its_quota_is_a_409_at_once(personas, media, settings):
    upload(personas.researcher_a, personas.lab_a, ("a.png", _png(1)))
    settings.LAB_DERIVED_QUOTA_BYTES = quota.derived_bytes(personas.lab_a.pk)
    batches = UploadBatch.objects.count()
    answer = post_files(personas.researcher_a, personas.lab_a, ("b.png", _png(2)))
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "quota_exceeded"
    assert UploadBatch.objects.count() == batches  # nothing staged
    # Another lab is not held back by this one's quota use.
    other = post_files(personas.admin_b, personas.lab_b, ("c.png", _png(3)))
    assert other.status_code == 202


@pytest.mark.parametrize("limit", [0])
def test_the_upload_page_says_so(personas, media, settings, client, limit):
    settings.LAB_DERIVED_QUOTA_BYTES = limit
    client.force_login(personas.researcher_a)
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = client.post("/images/upload/", {"files": [SimpleUploadedFile("a.png", _png(1))]})
    assert page.status_code == 400 and "quota" in page.content.decode()
