"""A snapshot created through the API is built by a real Celery worker process."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.datasets import services
from apps.datasets.models import DatasetSnapshot
from apps.datasets.tasks import snapshot_build_task
from tests.apps.datasets.conftest import CHOICES
from tests.conftest import client_for
from tests.e2e import test_celery_worker as e2e

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
celery_worker = e2e.worker  # the e2e tests' worker process, as a fixture of this module


@pytest.fixture
def worker_media(media, settings, monkeypatch):
    """The worker process stores and reads files under this test's MEDIA_ROOT too."""
    monkeypatch.setenv("MEDIA_ROOT", str(media))
    monkeypatch.setenv("STORAGE_CACHE_DIR", settings.STORAGE_CACHE_DIR)


def test_worker_builds_a_snapshot(worker_media, celery_worker, personas, images, monkeypatch):
    queue, _ = celery_worker
    # The task goes to this test's own queue, so that no other worker takes it.
    monkeypatch.setattr(
        services,
        "_enqueue",
        lambda sid: transaction.on_commit(
            lambda: snapshot_build_task.apply_async(args=[sid], queue=queue)
        ),
    )
    body = {"lab": personas.lab_a.pk, "name": "worker", **CHOICES}
    response = client_for(personas.researcher_a).post("/api/v1/snapshots/", body, format="json")
    assert response.status_code == 202, response.json()
    sid = response.json()["id"]
    e2e._wait(
        lambda: DatasetSnapshot.objects.get(pk=sid).status in ("ready", "failed"), 120, "the build"
    )
    snap = DatasetSnapshot.objects.get(pk=sid)
    assert snap.status == "ready", snap.error
    # The same choices built here give the same hash as the worker's build.
    again = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="here", enqueue=False, **CHOICES
    )
    assert services.snapshot_build(snapshot_id=again.pk).content_hash == snap.content_hash
