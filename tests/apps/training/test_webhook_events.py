"""A job that ends and an alias that is set reach the lab's webhooks (sent after commit)."""

from __future__ import annotations

import pytest

from apps.training import services
from apps.webhooks.models import Webhook, WebhookDelivery
from tests.apps.training.objects import TINY, model_version

pytestmark = pytest.mark.django_db(transaction=True)  # deliveries are queued on commit


@pytest.fixture
def hook(personas, monkeypatch):
    from apps.webhooks import services as webhooks

    sent: list[int] = []
    monkeypatch.setattr(
        webhooks, "_enqueue", lambda delivery_id, *a, **kw: sent.append(delivery_id)
    )
    hook = Webhook.objects.create(
        lab=personas.lab_a, url="https://hooks.example.org/gaze", secret="whsec_test",
        events=["training.job.succeeded", "training.job.cancelled", "model.alias.set"],
    )  # fmt: skip
    return hook, sent


def _events(hook) -> list[tuple[str, dict]]:
    return [
        (d.event, d.payload) for d in WebhookDelivery.objects.filter(webhook=hook).order_by("id")
    ]


def test_a_job_that_succeeds_and_an_alias_reach_the_webhooks(snapshot, personas, hook):
    hook, sent = hook
    job = services.job_create(
        snapshot=snapshot, actor=personas.researcher_a, overrides=TINY, enqueue=False
    )
    done = services.job_run(job_id=job.pk)
    assert done.status == "succeeded"
    [(event, payload)] = _events(hook)
    assert event == "training.job.succeeded" and payload["job"] == job.pk
    version = done.version
    assert payload["model_version"] == version.pk and payload["snapshot"] == snapshot.pk
    services.alias_set(version=version, name="production", actor=personas.researcher_a)
    event, payload = _events(hook)[-1]
    assert event == "model.alias.set" and payload["alias"] == "production"
    assert payload["model_version"] == version.pk
    assert len(sent) == 2  # each delivery sent to the queue


def test_a_cancelled_job_is_sent_and_unsubscribed_events_are_not(snapshot, personas, hook):
    hook, _ = hook
    job = services.job_create(
        snapshot=snapshot, actor=personas.researcher_a, overrides=TINY, enqueue=False
    )
    services.job_cancel(job=job)
    assert [e for e, _ in _events(hook)] == ["training.job.cancelled"]
    other = model_version(personas.lab_b, personas.admin_b)  # another lab's version
    services.alias_set(version=other, name="production", actor=personas.admin_b)
    assert [e for e, _ in _events(hook)] == ["training.job.cancelled"]
