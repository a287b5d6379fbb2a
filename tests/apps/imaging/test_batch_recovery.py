"""An upload batch whose worker dies is recovered by the sweeper: the files it had not finished
go back to the queue and the next run finishes them; after too many starts it fails, saying why."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.imaging import services, tasks
from apps.imaging.models import Image, UploadBatch
from apps.imaging.services import batches
from tests.apps.imaging.batches import post_files
from tests.apps.imaging.conftest import stored_files
from tests.apps.imaging.dicoms import gradient, png_bytes

pytestmark = pytest.mark.django_db


def _files(n: int):
    return [
        (f"img{i}.png", png_bytes(gradient(40, 30, maximum=255, dtype=np.uint8, seed=i)))
        for i in range(n)
    ]


@pytest.fixture
def queued(personas, media, monkeypatch) -> tuple[UploadBatch, list[int]]:
    sent: list[int] = []
    monkeypatch.setattr(batches, "_enqueue", sent.append)
    answer = post_files(personas.researcher_a, personas.lab_a, *_files(3))
    assert answer.status_code == 202
    return UploadBatch.objects.get(pk=answer.json()["id"]), sent


def _age(batch: UploadBatch, seconds: float) -> None:
    UploadBatch.objects.filter(pk=batch.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def _die_after_one_file(batch: UploadBatch) -> None:
    """What a worker killed in the middle of the second file leaves behind."""
    claimed = services.upload_batch_claim(batch_id=batch.pk)
    first, second, _ = claimed.files.order_by("position")
    batches._run_row(claimed, first)
    batches._row_start(second)


def test_a_batch_whose_worker_died_goes_on_with_the_files_it_had_not_finished(
    queued, settings, media
):
    batch, sent = queued
    _die_after_one_file(batch)
    assert services.upload_batches_sweep()["recovered"] == []  # alive: it just beat
    _age(batch, settings.SWEEP_RUNNING_AFTER_S + 5)
    done = services.upload_batches_sweep()
    assert done["recovered"] == [batch.pk] and sent[-1] == batch.pk
    batch.refresh_from_db()
    assert batch.status == "queued" and batch.attempts == 1
    assert [f.status for f in batch.files.order_by("position")] == ["created", "queued", "queued"]
    services.upload_batch_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == "done" and (batch.created, batch.duplicates, batch.rejected) == (3, 0, 0)
    assert Image.objects.filter(lab=batch.lab).count() == 3  # none twice
    assert not [p for p in stored_files(media) if "incoming" in p.parts]


def test_a_batch_that_keeps_dying_fails_saying_why(queued, settings, media):
    batch, _ = queued
    settings.SWEEP_MAX_ATTEMPTS = 1
    _die_after_one_file(batch)
    _age(batch, settings.SWEEP_RUNNING_AFTER_S + 5)
    assert services.upload_batches_sweep()["failed"] == [batch.pk]
    batch.refresh_from_db()
    assert batch.status == "failed" and "stopped without a word 1 times" in batch.error
    rows = list(batch.files.order_by("position"))
    assert rows[0].status == "created"
    assert [r.status for r in rows[1:]] == ["rejected", "rejected"]
    assert "not ingested: the upload stopped" in rows[1].message
    assert not [p for p in stored_files(media) if "incoming" in p.parts]  # staged files gone


def test_a_batch_no_worker_took_is_queued_again(queued, settings):
    batch, sent = queued
    sent.clear()
    assert services.upload_batches_sweep()["queued_again"] == []
    _age(batch, settings.SWEEP_QUEUED_AFTER_S + 5)
    assert services.upload_batches_sweep()["queued_again"] == [batch.pk] and sent == [batch.pk]


def test_the_sweep_is_periodic(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["imaging-batches-sweep"]
    assert entry["task"] == tasks.upload_batches_sweep_task.name == "imaging.batches_sweep"
