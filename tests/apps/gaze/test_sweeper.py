"""A parse that cannot claim its recording leaves it retryable, and the sweeper recovers
recordings whose parse shows no sign of life (a lost message, a dead worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from apps.gaze import services
from apps.gaze.models import Recording
from apps.gaze.services import recordings as recordings_module
from apps.gaze.tasks import recording_parse_task
from tests.apps.gaze.objects import gaze_recording


@pytest.fixture
def queued(personas, monkeypatch) -> tuple[Recording, list[int]]:
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    rec = gaze_recording(personas.lab_a)
    rec.refresh_from_db()
    return rec, sent


def _age(rec: Recording, seconds: float) -> None:
    Recording.objects.filter(pk=rec.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_claim_that_fails_leaves_the_recording_queued_and_the_task_retries(queued, monkeypatch):
    rec, _ = queued
    assert rec.status == "queued" and rec.heartbeat_at is not None

    def locked(**_):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Recording.objects, "select_for_update", lambda **_: locked())
    with pytest.raises(services.RecordingClaimFailed, match="database is locked"):
        services.recording_parse(recording_id=rec.pk)
    rec.refresh_from_db()
    assert rec.status == "queued" and rec.attempts == 0  # untouched: it can be parsed again

    retried = []

    def retry(exc=None, countdown=None, **kw):
        retried.append((type(exc).__name__, countdown))
        raise RuntimeError("retry scheduled")

    task = current_app.tasks[recording_parse_task.name]
    monkeypatch.setattr(task, "retry", retry)
    with pytest.raises(RuntimeError, match="retry scheduled"):
        task.run(rec.pk)
    assert retried == [("RecordingClaimFailed", 2)]


def test_the_sweeper_queues_again_what_no_worker_took(queued, settings):
    rec, sent = queued
    sent.clear()
    assert services.recordings_sweep() == {"queued_again": [], "recovered": [], "failed": []}
    _age(rec, settings.SWEEP_QUEUED_AFTER_S + 5)
    assert services.recordings_sweep()["queued_again"] == [rec.pk]
    assert sent == [rec.pk]
    rec.refresh_from_db()
    assert rec.status == "queued" and timezone.now() - rec.heartbeat_at < timedelta(seconds=30)
    assert services.recordings_sweep()["queued_again"] == []  # fresh again: left alone


def test_the_sweeper_recovers_a_parse_whose_worker_died_then_gives_up(queued, settings):
    rec, sent = queued
    settings.SWEEP_MAX_ATTEMPTS = 2
    for attempt in (1, 2):
        claimed = services.recording_claim(recording_id=rec.pk)
        assert claimed.status == "parsing" and claimed.attempts == attempt
        services.recording_report_progress(recording_id=rec.pk, progress=40)
        assert services.recordings_sweep()["recovered"] == []  # alive: progress just reported
        _age(rec, settings.SWEEP_RUNNING_AFTER_S + 5)  # ... then silent: the worker died
        done = services.recordings_sweep()
        if attempt == 1:
            assert done["recovered"] == [rec.pk] and sent[-1] == rec.pk
            rec.refresh_from_db()
            assert rec.status == "queued" and rec.progress == 0
    assert done["failed"] == [rec.pk]
    rec.refresh_from_db()
    assert rec.status == "failed" and "2 times" in rec.errors[0]
    services.recording_reparse(recording=rec)  # a person can parse it again, from scratch
    rec.refresh_from_db()
    assert rec.status == "queued" and rec.attempts == 0


def test_a_second_delivery_of_a_swept_recording_is_harmless(queued, settings):
    rec, _ = queued
    first = services.recording_claim(recording_id=rec.pk)
    assert first is not None
    assert services.recording_claim(recording_id=rec.pk) is None  # duplicate message: nothing


def test_the_sweeper_runs_periodically_and_as_a_command(queued, settings, capsys):
    entry = settings.CELERY_BEAT_SCHEDULE["gaze-recordings-sweep"]
    assert entry["task"] == "gaze.recordings_sweep"
    assert entry["schedule"] == settings.SWEEP_EVERY_S
    rec, _ = queued
    _age(rec, settings.SWEEP_QUEUED_AFTER_S + 5)
    call_command("recordings_sweep")
    assert f"queued again: 1 [{rec.pk}]" in capsys.readouterr().out
    assert recordings_module.recordings_sweep is services.recordings_sweep
