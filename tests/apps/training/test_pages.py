"""The training pages: the queue with its form, a job page (epochs, curves, attempts, log,
cancel), the model list and the model card (aliases, checkpoint link); tenancy and roles."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.training import services
from apps.training.models import ModelAlias, TrainingJob

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_queue_create_job_page_model_card(snapshot, personas, monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    client = _client(personas.researcher_a)
    page = client.get("/training/")
    assert page.status_code == 200 and b"Start training" in page.content
    response = client.post(
        "/training/", {"snapshot": snapshot.pk, "preset": "quick", "epochs": 2, "base_channels": 4}
    )
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/{job.pk}/"
    queued = client.get(f"/training/{job.pk}/").content.decode()
    assert "in the lab&#x27;s queue" in queued or "in the lab's queue" in queued
    assert 'id="job-cancel"' in queued

    services.job_run(job_id=job.pk)
    content = client.get(f"/training/{job.pk}/").content.decode()
    assert 'id="curves-data"' in content and 'id="job-epochs"' in content
    assert "<script>" not in content  # CSP: scripts come from files only
    assert 'id="job-cancel"' not in content and "succeeded" in content
    version = job.version
    listed = client.get("/models/").content.decode()
    assert f"/models/{version.pk}/" in listed
    card = client.get(f"/models/{version.pk}/").content.decode()
    assert f"/api/v1/model-versions/{version.pk}/checkpoint/" in card and snapshot.name in card
    assert client.post(f"/models/{version.pk}/", {"name": "production"}).status_code == 302
    assert ModelAlias.objects.get().version == version


def test_cancel_from_the_page(snapshot, personas, monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    job = services.job_create(snapshot=snapshot, actor=personas.researcher_a, enqueue=False)
    viewer = _client(personas.viewer_a)
    assert viewer.get(f"/training/{job.pk}/").status_code == 200
    assert b'id="job-cancel"' not in viewer.get(f"/training/{job.pk}/").content
    assert viewer.post(f"/training/{job.pk}/cancel/").status_code == 403
    assert viewer.post("/training/", {"snapshot": snapshot.pk}).status_code == 403
    response = _client(personas.researcher_a).post(f"/training/{job.pk}/cancel/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_another_lab_sees_nothing(snapshot, personas):
    job = services.job_create(snapshot=snapshot, actor=personas.researcher_a, enqueue=False)
    other = _client(personas.admin_b)
    assert other.get(f"/training/{job.pk}/").status_code == 404
    assert other.post(f"/training/{job.pk}/cancel/").status_code == 404
    assert job.name.encode() not in other.get("/training/").content
    # Lab A's snapshot is no choice in lab B's form.
    assert other.post("/training/", {"snapshot": snapshot.pk, "preset": "quick"}).status_code == 200
    assert TrainingJob.objects.count() == 1


def test_the_form_takes_a_seed_and_an_alias_to_set_on_success(snapshot, personas, monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    client = _client(personas.researcher_a)
    form = {"snapshot": snapshot.pk, "preset": "quick", "epochs": 1, "base_channels": 4}
    bad = client.post("/training/", {**form, "alias": "Not A Slug"})
    assert bad.status_code == 200 and "lowercase letters" in bad.content.decode()
    assert not TrainingJob.objects.exists()
    response = client.post("/training/", {**form, "seed": 7, "alias": "candidate"})
    assert response.status_code == 302
    job = TrainingJob.objects.get()
    assert job.config["seed"] == 7 and job.alias_on_success == "candidate"
    services.job_run(job_id=job.pk)
    assert ModelAlias.objects.get(name="candidate").version == job.version


def test_the_queue_page_reads_positions_without_a_query_per_job(snapshot, personas, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    client = _client(personas.researcher_a)

    def queue(n: int) -> None:
        for _ in range(n):
            services.job_create(snapshot=snapshot, actor=personas.researcher_a,
                                overrides={"base_channels": 4})  # fmt: skip

    queue(1)
    with CaptureQueriesContext(connection) as one:
        client.get("/training/")
    queue(3)
    with CaptureQueriesContext(connection) as four:
        page = client.get("/training/").content.decode()
    assert len(four) == len(one)
    positions = re.findall(r'class="job-position">#(\d+) in queue', page)
    assert sorted(map(int, positions)) == [1, 2, 3, 4]
