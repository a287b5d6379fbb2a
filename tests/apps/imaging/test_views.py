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


def test_the_upload_form_posts_without_javascript_and_lands_on_the_library(client, personas):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.imaging.models import UploadBatch

    client.force_login(personas.researcher_a)
    files = [SimpleUploadedFile(f"f{i}.dcm", dicom_bytes(gradient(4, 4, seed=i))) for i in range(2)]
    response = client.post("/images/upload/", {"files": files, "label": "CHF"})
    batch = UploadBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/images/?batch={batch.pk}"
    assert batch.status == "queued" and batch.files_total == 2
    assert set(batch.files.values_list("label", flat=True)) == {"CHF"}
    page = client.get(response["Location"]).content.decode()
    assert f'id="batch-{batch.pk}"' in page and 'data-status="queued"' in page
    assert "0 of 2 files done" in page and "imaging/batch.js" in page

    services.upload_batch_run(batch_id=batch.pk)
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="done"' in page and "2 of 2 files done: 2 stored" in page
    assert "f0.dcm: stored as &#x27;f0&#x27;." in page and "2 images" in page

    empty = client.post("/images/upload/", {"label": ""})
    assert empty.status_code == 400 and "No files were uploaded." in empty.content.decode()
    client.force_login(personas.viewer_a)
    refused = client.post("/images/upload/", {"files": [SimpleUploadedFile("a.dcm", b"x")]})
    assert refused.status_code == 403 and UploadBatch.objects.count() == 1


def test_the_library_shows_unfinished_batches_of_the_user_and_of_this_lab_only(client, personas):
    from apps.core.uploads import Upload

    def batch(lab, user):
        data = dicom_bytes(gradient(4, 4))
        return services.upload_batch_create(
            lab=lab, created_by=user, uploads=[Upload(io.BytesIO(data), "a.dcm", len(data))]
        )

    mine = batch(personas.lab_a, personas.researcher_a)
    theirs = batch(personas.lab_a, personas.admin_a)
    other_lab = batch(personas.lab_b, personas.admin_b)
    client.force_login(personas.researcher_a)
    page = client.get("/images/").content.decode()
    assert f'id="batch-{mine.pk}"' in page and f'id="batch-{theirs.pk}"' not in page
    page = client.get(f"/images/?batch={theirs.pk}").content.decode()  # named: shown
    assert f'id="batch-{theirs.pk}"' in page
    page = client.get(f"/images/?batch={other_lab.pk}").content.decode()
    assert "upload-batch" not in page and "batch.js" not in page
