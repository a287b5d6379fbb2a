"""The snapshots API (202 while it builds, status, export, delete) and the pages."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client

from apps.datasets import services
from apps.datasets.models import DatasetSnapshot
from tests.apps.datasets.conftest import CHOICES
from tests.conftest import client_for


def _body(personas, **extra):
    return {"lab": personas.lab_a.pk, "name": "API snapshot", **CHOICES, **extra}


def test_create_answers_202_with_a_status_url_and_builds_on_commit(
    personas, images, django_capture_on_commit_callbacks
):
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(personas.researcher_a).post(
                "/api/v1/snapshots/", _body(personas), format="json"
            )
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["status_url"] == f"/api/v1/snapshots/{body['id']}/status/"
    assert body["status"] == "queued" and body["counts"]["test"]["CHF"] == 2
    status = client_for(personas.viewer_a).get(body["status_url"]).json()
    assert status["status"] == "ready" and status["progress"] == 100
    assert len(status["content_hash"]) == 64
    detail = client_for(personas.viewer_a).get(f"/api/v1/snapshots/{body['id']}/").json()
    assert detail["export_url"] == f"/api/v1/snapshots/{body['id']}/export/"
    assert detail["identical_to"] == [] and detail["choices"]["resolution"] == [64, 64]


def test_routes_of_the_celery_task(settings):
    from config.celery import app

    assert app.amqp.router.route({}, "datasets.snapshot_build")["queue"].name == "default"


def test_bad_input_is_400_naming_the_field(personas, images):
    client = client_for(personas.researcher_a)
    for extra, field in [
        ({"resolution": [100, 64]}, "resolution"),
        ({"labels": ["Effusion"]}, "labels"),
        ({"split": "random"}, "split"),
        ({"colour": "red"}, "colour"),
    ]:
        response = client.post("/api/v1/snapshots/", _body(personas, **extra), format="json")
        assert response.status_code == 400, (extra, response.json())
        assert field in response.json()["error"]["fields"], response.json()


def test_an_untrainable_choice_is_400_saying_what_is_missing(personas, images):
    response = client_for(personas.researcher_a).post(
        "/api/v1/snapshots/", _body(personas, labels=["CHF"], readers=["R1"],
                                    uploaded_before="2000-01-01"), format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("labels: No image matches")


def test_viewer_cannot_create_or_delete(personas, images):
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="s", enqueue=False, **CHOICES
    )
    viewer = client_for(personas.viewer_a)
    assert viewer.post("/api/v1/snapshots/", _body(personas), format="json").status_code == 403
    assert viewer.delete(f"/api/v1/snapshots/{snap.pk}/").status_code == 403
    assert DatasetSnapshot.objects.count() == 1


def test_export_is_409_until_ready_then_a_zip(personas, images):
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="s", enqueue=False, **CHOICES
    )
    client = client_for(personas.viewer_a)
    response = client.get(f"/api/v1/snapshots/{snap.pk}/export/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    services.snapshot_build(snapshot_id=snap.pk)
    response = client.get(f"/api/v1/snapshots/{snap.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        assert "README.txt" in zf.namelist() and "manifest.json" in zf.namelist()


def test_list_filters_and_delete(personas, images, django_capture_on_commit_callbacks):
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="s", enqueue=False, **CHOICES
    )
    services.snapshot_build(snapshot_id=snap.pk)
    client = client_for(personas.researcher_a)
    assert client.get("/api/v1/snapshots/?status=ready").json()["count"] == 1
    assert client.get("/api/v1/snapshots/?status=queued").json()["count"] == 0
    assert client.get(f"/api/v1/snapshots/?lab={personas.lab_b.pk}").json()["count"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/v1/snapshots/{snap.pk}/").status_code == 204
    assert not DatasetSnapshot.objects.exists()


def test_a_snapshot_being_built_is_not_deleted(personas, images):
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="s", enqueue=False, **CHOICES
    )
    services.snapshot_claim(snapshot_id=snap.pk)
    response = client_for(personas.researcher_a).delete(f"/api/v1/snapshots/{snap.pk}/")
    assert response.status_code == 400 and "is being built" in response.json()["error"]["message"]


@pytest.fixture
def browser(personas):
    client = Client()
    client.force_login(personas.researcher_a)
    return client


def test_pages_list_create_show_and_delete(personas, images, browser):
    page = browser.get("/datasets/")
    assert page.status_code == 200 and b'id="snapshot-form"' in page.content
    assert "script-src 'self'" in page["Content-Security-Policy"]
    response = browser.post(
        "/datasets/",
        {"name": "From the page", "height": 64, "width": 64, "sigma_deg": 1.0,
         "min_grade": "usable", "use_for_training_only": "on", "split": "original", "seed": 0},
    )  # fmt: skip
    snap = DatasetSnapshot.objects.get(name="From the page")
    assert response.status_code == 302 and response["Location"] == f"/datasets/{snap.pk}/"
    page = browser.get(f"/datasets/{snap.pk}/")
    assert page.status_code == 200 and b"datasets/snapshot.js" in page.content
    services.snapshot_build(snapshot_id=snap.pk)
    page = browser.get(f"/datasets/{snap.pk}/").content.decode()
    assert snap.__class__.objects.get(pk=snap.pk).content_hash in page
    assert f"/api/v1/snapshots/{snap.pk}/export/" in page and "<script>" not in page
    response = browser.post(f"/datasets/{snap.pk}/delete/")
    assert response.status_code == 302 and not DatasetSnapshot.objects.exists()


def test_page_form_shows_refusals(personas, browser):
    form = {"name": "x", "height": 64, "width": 64, "sigma_deg": 1, "min_grade": "usable",
            "split": "original", "seed": 0}  # fmt: skip
    page = browser.post("/datasets/", form)
    assert page.status_code == 200 and b"No image matches" in page.content


def test_viewer_sees_no_form_and_other_labs_get_404(personas, images):
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="s", enqueue=False, **CHOICES
    )
    viewer = Client()
    viewer.force_login(personas.viewer_a)
    assert b'id="snapshot-form"' not in viewer.get("/datasets/").content
    assert viewer.post("/datasets/", {"name": "x"}).status_code == 403
    other = Client()
    other.force_login(personas.admin_b)
    assert other.get(f"/datasets/{snap.pk}/").status_code == 404
    assert other.post(f"/datasets/{snap.pk}/delete/").status_code == 404
