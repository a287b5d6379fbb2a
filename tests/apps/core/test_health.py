from __future__ import annotations

import pytest

from config.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_health_without_a_broker_is_down(client, monkeypatch):
    # A port nothing listens on: the broker check must fail fast and say so.
    dead = "redis://127.0.0.1:9/0"
    monkeypatch.setattr(celery_app.conf, "broker_url", dead)
    # Celery reads CELERY_BROKER_URL from the environment before its configuration. (Patched
    # second, so that undoing the attribute above restores the real URL, not this one.)
    monkeypatch.setenv("CELERY_BROKER_URL", dead)
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "down"
    assert report["database"]["ok"] is True
    assert report["broker"]["ok"] is False and "Error" in report["broker"]["error"]
    assert report["workers"]["ok"] is False


def test_health_is_public_and_reports_components(client):
    response = client.get("/api/v1/health/")
    report = response.json()
    assert response.status_code == 200, report
    assert report["database"] == {
        "ok": True,
        "vendor": report["database"]["vendor"],
        "latency_ms": report["database"]["latency_ms"],
    }
    assert report["broker"]["ok"] is True
    # Whether a worker runs on this machine is not ours to decide; the report must say which.
    assert report["status"] == ("ok" if report["workers"]["ok"] else "degraded")


def test_health_refuses_an_unknown_workers_option(client):
    response = client.get("/api/v1/health/?workers=some")
    assert response.status_code == 400
    assert "workers" in response.json()["error"]["fields"]
