"""Acceptance: a 12-file API upload is answered 202 before the ingest ends, and a real Celery
worker process then ingests the batch, file by file, to its end."""

from __future__ import annotations

import os
import uuid

import pytest

from apps.imaging.models import Image, UploadBatch
from apps.imaging.services import batches
from apps.imaging.tasks import upload_batch_run_task
from tests.apps.imaging.batches import post_files, twelve_files
from tests.apps.imaging.conftest import stored_files
from tests.conftest import client_for
from tests.e2e.stack import celery_worker
from tests.e2e.test_celery_worker import _database_url, _wait

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_twelve_file_upload_is_answered_202_then_a_worker_ingests_it(
    personas, media, tmp_path, monkeypatch
):
    queue = f"pytest-{uuid.uuid4().hex[:10]}"
    # The task goes to this test's own queue, so that no other worker takes it.
    monkeypatch.setattr(
        batches,
        "_enqueue",
        lambda batch_id: batches.transaction.on_commit(
            lambda: upload_batch_run_task.apply_async(args=[batch_id], queue=queue)
        ),
    )
    files = twelve_files()
    answer = post_files(personas.researcher_a, personas.lab_a, *files)
    assert answer.status_code == 202, answer.json()
    batch_id = answer.json()["id"]
    # The answer came with nothing ingested: no worker is running yet.
    assert answer.json()["status"] == "queued" and Image.objects.count() == 0
    assert UploadBatch.objects.get(pk=batch_id).status == "queued"

    env = {**os.environ, "DATABASE_URL": _database_url(), "MEDIA_ROOT": str(media)}
    with celery_worker(queue, tmp_path / "worker.log", env):
        _wait(
            lambda: UploadBatch.objects.get(pk=batch_id).status in ("done", "failed"),
            180,
            "the worker to ingest the batch",
        )
    body = client_for(personas.viewer_a).get(answer["Location"]).json()
    assert body["status"] == "done", body
    assert body["progress"] == {"done": 12, "total": 12, "percent": 100}
    assert (body["created"], body["duplicates"], body["rejected"]) == (11, 0, 1)
    assert [f["file"] for f in body["files"]] == [name for name, _ in files]
    for row in body["files"]:
        if row["file"] == "notes.txt":
            assert row["status"] == "rejected" and row["image"] is None
            assert row["message"].startswith("notes.txt: is not a DICOM file"), row
        else:
            key = row["file"].rsplit(".", 1)[0]
            assert row["status"] == "created" and row["image"]["key"] == key, row
            assert row["message"] == f"{row['file']}: stored as {key!r}."
    images = Image.objects.filter(lab=personas.lab_a)
    assert sorted(images.values_list("key", flat=True)) == sorted(
        name.rsplit(".", 1)[0] for name, _ in files if name != "notes.txt"
    )
    assert all(i.uploaded_by_id == personas.researcher_a.pk for i in images)
    assert not [p for p in stored_files(media) if "incoming" in p.parts]  # staged files gone
    thumb = client_for(personas.viewer_a).get(body["files"][0]["image"]["thumbnail_url"])
    assert thumb.status_code == 200
