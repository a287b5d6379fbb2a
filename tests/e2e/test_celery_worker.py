"""A real Celery worker process on the configured broker (Redis in CI) runs a task end to end."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.labs.models import ApiToken
from apps.labs.services import api_token_create
from apps.labs.tasks import api_token_purge
from tests.e2e.stack import celery_worker, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    """The URL of the database this test runs on (the test database, not the default one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


_wait = wait_for  # the name the gaze and imaging worker tests use


@pytest.fixture
def worker(tmp_path):
    """A worker consuming a queue of its own, so that no other worker takes our task."""
    queue = f"pytest-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "DATABASE_URL": _database_url()}
    with celery_worker(queue, tmp_path / "worker.log", env) as hostname:
        yield queue, hostname


def test_worker_runs_a_task_against_the_database(worker, personas):
    queue, hostname = worker
    dead, _ = api_token_create(user=personas.viewer_a, name="dead")
    alive, _ = api_token_create(user=personas.viewer_a, name="alive")
    ApiToken.objects.filter(pk=dead.pk).update(revoked_at=timezone.now() - timedelta(days=60))

    api_token_purge.apply_async(kwargs={"older_than_days": 30}, queue=queue)

    _wait(lambda: not ApiToken.objects.filter(pk=dead.pk).exists(), 60, "the task to run")
    assert ApiToken.objects.filter(pk=alive.pk).exists()


def test_health_reports_the_live_worker(worker, client):
    _, hostname = worker
    report = client.get("/api/v1/health/?workers=all").json()
    assert report["database"]["ok"] and report["broker"]["ok"], report
    assert report["workers"]["ok"] is True and report["workers"]["census"] is True, report
    assert hostname in report["workers"]["names"]
    assert report["status"] == "ok"
    # Without the census the first reply is enough: one worker named, the wait cut short.
    quick = client.get("/api/v1/health/").json()
    assert quick["status"] == "ok" and quick["workers"]["census"] is False, quick
    assert quick["workers"]["count"] == 1 and len(quick["workers"]["names"]) == 1
    # The census waits out the ping timeout; the quick check returns before it (cut short).
    timeout_ms = settings.CELERY_WORKER_PING_TIMEOUT * 1000
    assert report["workers"]["latency_ms"] >= timeout_ms > quick["workers"]["latency_ms"]
