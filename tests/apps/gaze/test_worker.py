"""A recording uploaded through the API is parsed by a real Celery worker process."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.gaze import services
from apps.gaze.models import Reading, Recording
from apps.gaze.tasks import recording_parse_task
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import simulated
from tests.conftest import client_for
from tests.e2e import test_celery_worker as e2e

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
celery_worker = e2e.worker  # the e2e tests' worker process, as a fixture of this module


@pytest.fixture
def worker_media(media, monkeypatch):
    """The worker process stores and reads files under this test's MEDIA_ROOT too."""
    monkeypatch.setenv("MEDIA_ROOT", str(media))


def test_worker_parses_an_uploaded_recording(
    worker_media,
    celery_worker,
    personas,
    images,
    session,
    phantoms,
    tmp_path,
    monkeypatch,
):
    queue, _ = celery_worker
    # The task goes to this test's own queue, so that no other worker takes it.
    monkeypatch.setattr(
        services,
        "_enqueue",
        lambda rid: transaction.on_commit(
            lambda: recording_parse_task.apply_async(args=[rid], queue=queue)
        ),
    )
    paths = write_eyelink_asc(simulated(phantoms[:2], 1000, n_fix=8), tmp_path / "w.asc")
    with paths["asc"].open("rb") as fh:
        response = client_for(personas.researcher_a).post(
            "/api/v1/recordings/", {"session": session.pk, "files": [fh]}, format="multipart"
        )
    assert response.status_code == 201, response.json()
    rid = response.json()[0]["id"]
    e2e._wait(lambda: Recording.objects.get(pk=rid).status in ("done", "failed"), 90, "the parse")
    rec = Recording.objects.get(pk=rid)
    assert rec.status == "done", rec.errors
    assert rec.progress == 100 and Reading.objects.filter(recording=rec).count() == 2
