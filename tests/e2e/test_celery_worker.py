"""A real Celery worker process on the configured broker (Redis in CI) runs a task end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    """The URL of the database this test runs on (the test database, not the default one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def worker(tmp_path):
    """A worker consuming a queue of its own, so that no other worker takes our task."""
    queue = f"pytest-{uuid.uuid4().hex[:10]}"
    hostname = f"{queue}@localhost"
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--hostname",
            hostname,
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DATABASE_URL": _database_url()},
    )
    try:
        _wait(
            lambda: (
                process.poll() is not None
                or celery_app.control.ping(destination=[hostname], timeout=1.0)
            ),
            60,
            "the worker to answer a ping",
        )
        assert process.poll() is None, (tmp_path / "worker.log").read_text()
        yield queue, hostname
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        print((tmp_path / "worker.log").read_text()[-3000:])


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
