"""A training job started through the API runs on a real Celery worker process: progress shows
while it runs, it succeeds with one model version; a cancel ends a running job within 10 s."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from django.db import transaction

from apps.training import services
from apps.training.models import EpochMetrics, ModelVersion, TrainingJob
from apps.training.tasks import training_run_task
from tests.conftest import client_for
from tests.e2e.stack import celery_worker, wait_for
from tests.e2e.test_celery_worker import _database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def training_worker(media, settings, monkeypatch, tmp_path):
    """A worker on a queue of its own (this test's jobs go there), storing files under this
    test's MEDIA_ROOT, pausing 0.2 s after each batch so that a tiny run can be watched."""
    queue = f"pytest-train-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(media),
        "STORAGE_CACHE_DIR": settings.STORAGE_CACHE_DIR,
        "TRAINING_BATCH_PAUSE_S": "0.2",
    }
    monkeypatch.setattr(
        services, "_enqueue",
        lambda job_id: transaction.on_commit(
            lambda: training_run_task.apply_async(args=[job_id], queue=queue)
        ),
    )  # fmt: skip
    with celery_worker(queue, tmp_path / "worker.log", env):
        yield queue


def _start(personas, snapshot, **extra) -> int:
    body = {"snapshot": snapshot.pk, "preset": "quick", "base_channels": 8, "batch_size": 2,
            **extra}  # fmt: skip
    response = client_for(personas.researcher_a).post("/api/v1/training-jobs/", body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def _status(personas, job_id) -> dict:
    return client_for(personas.viewer_a).get(f"/api/v1/training-jobs/{job_id}/status/").json()


def test_a_job_trains_on_a_worker_to_a_model_version(snapshot, personas, training_worker):
    job_id = _start(personas, snapshot, epochs=3)
    seen = wait_for(
        lambda: (s := _status(personas, job_id))["status"] == "running" and s["batch"] > 0 and s,
        120, "progress of the running job",
    )  # fmt: skip
    assert seen["heartbeat_at"] and seen["eta_s"] is not None and seen["num_batches"] > 0
    final = wait_for(
        lambda: (s := _status(personas, job_id))["status"] in ("succeeded", "failed") and s,
        180, "the job to finish",
    )  # fmt: skip
    job = TrainingJob.objects.get(pk=job_id)
    assert final["status"] == "succeeded", (job.error, job.traceback)
    assert list(EpochMetrics.objects.filter(job=job).values_list("epoch", flat=True)) == [1, 2, 3]
    version = ModelVersion.objects.get(job=job)
    assert final["version"] == version.pk and version.best_epoch in (1, 2, 3)
    download = client_for(personas.viewer_a).get(f"/api/v1/model-versions/{version.pk}/checkpoint/")
    assert download.status_code == 200
    # Another lab neither sees the job nor reads the checkpoint.
    other = client_for(personas.admin_b)
    assert other.get(f"/api/v1/training-jobs/{job_id}/").status_code == 404
    assert other.get(f"/api/v1/model-versions/{version.pk}/checkpoint/").status_code == 404


def test_a_cancel_ends_a_running_job_within_10_s(snapshot, personas, training_worker):
    job_id = _start(personas, snapshot, epochs=200)
    wait_for(
        lambda: (s := _status(personas, job_id))["status"] == "running" and s["epoch"] >= 1,
        120, "the first epoch to finish",
    )  # fmt: skip
    asked = time.monotonic()
    answer = client_for(personas.researcher_a).post(f"/api/v1/training-jobs/{job_id}/cancel/")
    assert answer.status_code == 200 and answer.json()["cancel_requested"]
    wait_for(lambda: _status(personas, job_id)["status"] == "cancelled", 10, "the cancel")
    assert time.monotonic() - asked < 10
    job = TrainingJob.objects.get(pk=job_id)
    assert job.checkpoint_name and job.checkpoint_epoch >= 1
    assert not ModelVersion.objects.filter(job=job).exists()
