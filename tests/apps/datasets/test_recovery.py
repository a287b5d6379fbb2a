"""A snapshot build whose worker dies starts over from the sweeper; after too many starts it
fails, saying why, and leaves no files."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.datasets import services, tasks
from apps.datasets.models import DatasetSnapshot, SnapshotFile

pytestmark = pytest.mark.django_db

CHOICES = {"resolution": [16, 16], "seed": 1}


@pytest.fixture
def queued(personas, images, monkeypatch) -> tuple[DatasetSnapshot, list[int]]:
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    snapshot = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="s", **CHOICES
    )
    return snapshot, sent


def _age(snapshot: DatasetSnapshot, seconds: float) -> None:
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_build_whose_worker_died_starts_over(queued, settings):
    snapshot, sent = queued
    reference = services.snapshot_create(lab=snapshot.lab, actor=None, name="reference", **CHOICES)
    services.snapshot_build(snapshot_id=reference.pk)
    reference.refresh_from_db()
    claimed = services.snapshot_claim(snapshot_id=snapshot.pk)  # ... and the worker dies
    assert claimed.status == "building" and claimed.attempts == 1
    _age(snapshot, settings.SWEEP_RUNNING_AFTER_S + 5)
    assert services.snapshots_sweep()["recovered"] == [snapshot.pk]
    assert sent[-1] == snapshot.pk
    snapshot.refresh_from_db()
    assert snapshot.status == "queued" and snapshot.progress == 0
    services.snapshot_build(snapshot_id=snapshot.pk)
    snapshot.refresh_from_db()
    assert snapshot.status == "ready" and snapshot.content_hash == reference.content_hash


def test_a_build_that_keeps_dying_fails_without_files(queued, settings):
    snapshot, _ = queued
    settings.SWEEP_MAX_ATTEMPTS = 1
    services.snapshot_claim(snapshot_id=snapshot.pk)
    _age(snapshot, settings.SWEEP_RUNNING_AFTER_S + 5)
    assert services.snapshots_sweep()["failed"] == [snapshot.pk]
    snapshot.refresh_from_db()
    assert snapshot.status == "failed" and "stopped without a word" in snapshot.error
    assert not SnapshotFile.objects.filter(snapshot=snapshot).exists()


def test_the_sweep_is_periodic(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["datasets-snapshots-sweep"]
    assert entry["task"] == tasks.snapshots_sweep_task.name == "datasets.snapshots_sweep"
