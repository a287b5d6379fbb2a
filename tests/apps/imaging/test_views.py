"""HTML pages of images: library (filter, search, paging), image page, upload page."""

from __future__ import annotations

import io

import pytest

from apps.imaging import services, views
from tests.apps.imaging.dicoms import dicom_bytes, gradient

pytestmark = pytest.mark.django_db


def add(lab, user, key, label="", seed=0):
    data = dicom_bytes(gradient(4, 4, seed=seed))
    return services.image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=f"{key}.dcm", size=len(data),
        label=label,
    ).image  # fmt: skip


def test_library_filters_searches_and_pages(client, personas, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    add(personas.lab_a, personas.admin_a, "alpha", "CHF", seed=1)
    add(personas.lab_a, personas.admin_a, "beta", "Normal", seed=2)
    add(personas.lab_a, personas.admin_a, "alphabet", "", seed=3)
    add(personas.lab_b, personas.admin_b, "other-lab", "CHF", seed=4)
    client.force_login(personas.viewer_a)
    page = client.get("/images/").content.decode()
    assert "3 images" in page and "Page 1 of 2" in page and "other-lab" not in page
    assert "Upload images" not in page  # a viewer cannot upload
    chf = client.get("/images/?label=CHF").content.decode()
    assert "alpha" in chf and "beta" not in chf and "1 image<" in chf
    assert "alphabet" in client.get("/images/?label=none").content.decode()
    found = client.get("/images/?q=ALPHA").content.decode()
    assert "2 images" in found and "beta" not in found
    assert client.get("/images/?page=99").status_code == 200


def test_image_page_shows_metadata_and_is_lab_scoped(client, personas):
    image = add(personas.lab_a, personas.admin_a, "k1", "Pneumonia")
    client.force_login(personas.researcher_a)
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert "k1" in page and "4 × 4 px" in page and 'id="window-center"' in page
    assert 'id="label-form"' in page and "attributes removed" in page
    client.force_login(personas.admin_b)
    assert client.get(f"/images/{image.pk}/").status_code == 404


def test_upload_page_for_writers_only(client, personas):
    client.force_login(personas.viewer_a)
    assert 'id="upload-refused"' in client.get("/images/upload/").content.decode()
    client.force_login(personas.researcher_a)
    page = client.get("/images/upload/").content.decode()
    assert 'id="dropzone"' in page and "imaging/upload.js" in page
    client.logout()
    assert client.get("/images/upload/").status_code == 302
