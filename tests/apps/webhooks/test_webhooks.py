"""Webhooks: signed calls to a real receiver on 127.0.0.1, retries, the SSRF guard, emitting
only on commit, the API and its roles."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.webhooks import services
from apps.webhooks.models import Webhook, WebhookDelivery
from config.celery import app
from tests.conftest import client_for

EVENTS = ["training.job.succeeded", "training.job.failed"]


def _hook(p, url, events=EVENTS) -> Webhook:
    return services.webhook_create(lab=p.lab_a, actor=p.admin_a, url=url, events=events)


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# --- Delivery to a real receiver --------------------------------------------------------------


def test_a_first_500_is_retried_and_the_call_is_signed(personas, allow_private, receiver):
    receiver.statuses = [500]
    hook = _hook(personas, receiver.url)
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.succeeded", payload={"job": 7}
    )
    first = services.webhook_deliver(delivery_id=delivery.pk)
    assert first.status == WebhookDelivery.Status.PENDING and first.attempts == 1
    second = services.webhook_deliver(delivery_id=delivery.pk)
    assert second.status == WebhookDelivery.Status.SUCCEEDED

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    attempts = list(delivery.attempt_log.all())
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert attempts[0].response_body == "oops" and attempts[1].response_body == '{"ok": true}'
    assert services.webhook_deliver(delivery_id=delivery.pk) is None  # done: nothing more

    assert len(receiver.calls) == 2
    for call in receiver.calls:
        assert call.path == "/hook?x=1"
        assert call.headers["Content-Type"] == "application/json"
        assert call.headers["User-Agent"] == "cxr-gaze-webhooks/1"
        assert call.headers["X-Webhook-Event"] == "training.job.succeeded"
        assert call.headers["X-Webhook-Delivery"] == str(delivery.pk)
        assert abs(int(call.headers["X-Webhook-Timestamp"]) - time.time()) < 60
        assert receiver.signature_valid(call, hook.secret)
        assert not receiver.signature_valid(call, "whsec_another")
        body = call.json
        assert body["event"] == "training.job.succeeded" and body["data"] == {"job": 7}
        assert body["id"] == delivery.pk and body["lab"] == personas.lab_a.pk


def test_the_task_retries_eagerly_until_success(
    personas, allow_private, receiver, eager, django_capture_on_commit_callbacks
):
    receiver.statuses = [500]
    _hook(personas, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = services.webhooks_emit(
            lab_id=personas.lab_a.pk, event="training.job.failed", payload={"job": 1}
        )
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 200]
    assert len(receiver.calls) == 2


def test_max_attempts_then_failed(personas, allow_private, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500, 502, 503, 500]
    _hook(personas, receiver.url)
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
    )
    for _ in range(3):
        services.webhook_deliver(delivery_id=delivery.pk)
    assert services.webhook_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 3 and delivery.finished_at
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 502, 503]
    assert len(receiver.calls) == 3


def test_a_redirect_is_not_followed(personas, allow_private, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.statuses = [302]
    _hook(personas, receiver.url)
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
    )
    services.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and len(receiver.calls) == 1


def test_an_unreachable_receiver_is_logged_as_an_error(personas, allow_private, settings):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    _hook(personas, f"http://127.0.0.1:{port}/")
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
    )
    services.webhook_deliver(delivery_id=delivery.pk)
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None and "ConnectionRefused" in attempt.error


def test_a_delivery_being_called_elsewhere_is_left_alone(personas, allow_private, receiver):
    from datetime import timedelta

    from django.utils import timezone

    _hook(personas, receiver.url)
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() + timedelta(seconds=30)
    )
    assert services.webhook_deliver(delivery_id=delivery.pk) is None
    assert receiver.calls == []


# --- Emitting --------------------------------------------------------------------------------


def test_emit_only_to_active_hooks_subscribed_to_the_event(personas, allow_private, receiver):
    subscribed = _hook(personas, receiver.url, ["training.job.succeeded"])
    _hook(personas, receiver.url, ["model.alias.set"])
    inactive = _hook(personas, receiver.url, ["training.job.succeeded"])
    services.webhook_update(webhook=inactive, actor=personas.admin_a, active=False)
    services.webhook_create(
        lab=personas.lab_b, actor=personas.admin_b, url=receiver.url,
        events=["training.job.succeeded"],
    )  # fmt: skip
    deliveries = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.succeeded", payload={"x": 1}
    )
    assert [d.webhook_id for d in deliveries] == [subscribed.pk]
    with pytest.raises(ValueError, match="Unknown webhook event"):
        services.webhooks_emit(lab_id=personas.lab_a.pk, event="nope", payload={})


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_sends_nothing(personas, allow_private, receiver, monkeypatch):
    from apps.webhooks import tasks

    sent = []
    monkeypatch.setattr(
        tasks.webhook_deliver_task, "apply_async", lambda args, **kw: sent.append(args)
    )
    _hook(personas, receiver.url)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.webhooks_emit(lab_id=personas.lab_a.pk, event="training.job.failed", payload={})
        raise Boom
    assert sent == [] and WebhookDelivery.objects.count() == 0
    with transaction.atomic():
        (delivery,) = services.webhooks_emit(
            lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
        )
        assert sent == []  # not before the commit
    assert sent == [[delivery.pk]]
    assert receiver.calls == []


# --- The SSRF guard --------------------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1:8000/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
    "http://localhost:8000/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_addresses_are_refused_at_registration(personas, url):
    with pytest.raises(ValidationError) as err:
        _hook(personas, url)
    assert "public addresses" in str(err.value.message_dict["url"])
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://8.8.8.8/", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("http://user:pw@8.8.8.8/", "credentials"),
        ("http://8.8.8.8:99999/", "valid URL"),
        ("http:///nohost", "valid URL"),
    ],
)
def test_other_schemes_and_credentials_are_refused(personas, url, message):
    with pytest.raises(ValidationError, match=message):
        _hook(personas, url)


def test_a_public_address_passes_the_check_without_the_network():
    assert services.webhook_url_check(url="https://8.8.8.8/x") == ("8.8.8.8", 443, ["8.8.8.8"])


def test_private_addresses_are_refused_again_at_delivery(personas, receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    _hook(personas, receiver.url)
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
    )
    services.webhook_deliver(delivery_id=delivery.pk)
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None and attempt.error.startswith("Refused: ")
    assert "loopback" in attempt.error
    assert receiver.calls == []  # never called


def test_the_call_connects_to_the_address_that_was_checked(
    personas, allow_private, receiver, monkeypatch
):
    """DNS rebinding: the connection goes to the checked address, not to a new lookup."""
    import socket

    hook = _hook(personas, receiver.url)
    port = receiver.url.split(":")[2].split("/")[0]
    Webhook.objects.filter(pk=hook.pk).update(url=f"http://rebind.test:{port}/hook")
    real = socket.getaddrinfo
    lookups = []

    def fake(host, *args, **kwargs):
        if host != "127.0.0.1":  # the connection may look up the literal address it was given
            lookups.append(host)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    (delivery,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="training.job.failed", payload={}
    )
    services.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and lookups == ["rebind.test"]
    assert receiver.calls[0].headers["Host"] == f"rebind.test:{port}"


# --- Registration rules ----------------------------------------------------------------------


def test_only_lab_admins_register_and_events_are_checked(personas, allow_private, receiver):
    with pytest.raises(PermissionDenied):
        services.webhook_create(
            lab=personas.lab_a, actor=personas.researcher_a, url=receiver.url, events=EVENTS
        )
    with pytest.raises(ValidationError, match="Unknown event"):
        _hook(personas, receiver.url, ["webhook.test"])
    with pytest.raises(ValidationError, match="at least one"):
        _hook(personas, receiver.url, [])
    hook = _hook(personas, receiver.url, ["model.alias.set", "training.job.failed"] * 2)
    assert hook.events == ["training.job.failed", "model.alias.set"]
    assert hook.secret.startswith("whsec_") and len(hook.secret) > 40
    old = hook.secret
    assert services.webhook_rotate_secret(webhook=hook, actor=personas.admin_a).secret != old


# --- API -------------------------------------------------------------------------------------


def test_api_create_shows_the_secret_once(personas, allow_private, receiver):
    admin = client_for(personas.admin_a)
    body = {"lab": personas.lab_a.pk, "url": receiver.url, "events": ["model.alias.set"]}
    response = admin.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    hook = Webhook.objects.get(pk=created["id"])
    assert created["secret"] == hook.secret and created["url"] == receiver.url
    listed = admin.get("/api/v1/webhooks/").json()["results"]
    assert [row["id"] for row in listed] == [hook.pk] and "secret" not in listed[0]
    assert "secret" not in admin.get(f"/api/v1/webhooks/{hook.pk}/").json()

    rotated = admin.post(f"/api/v1/webhooks/{hook.pk}/rotate-secret/").json()
    hook.refresh_from_db()
    assert rotated["secret"] == hook.secret != created["secret"]

    patched = admin.patch(
        f"/api/v1/webhooks/{hook.pk}/", {"active": False, "events": ["training.job.failed"]},
        format="json",
    )  # fmt: skip
    assert patched.status_code == 200
    assert patched.json()["active"] is False
    assert patched.json()["events"] == ["training.job.failed"]


def test_api_refuses_a_private_url_with_400(personas):
    body = {"lab": personas.lab_a.pk, "url": "http://169.254.169.254/", "events": EVENTS}
    response = client_for(personas.admin_a).post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["url"][0].startswith("The host '169.254.169.254'")
    hook = Webhook.objects.create(lab=personas.lab_a, url="https://8.8.8.8/", secret="s")
    response = client_for(personas.admin_a).patch(
        f"/api/v1/webhooks/{hook.pk}/", {"url": "http://10.0.0.1/"}, format="json"
    )
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]


def test_api_test_action_and_deliveries(
    personas, allow_private, receiver, eager, django_capture_on_commit_callbacks
):
    hook = _hook(personas, receiver.url)
    admin = client_for(personas.admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/api/v1/webhooks/{hook.pk}/test/")
    assert response.status_code == 202
    delivery_id = response.json()["id"]
    assert response.json()["event"] == "webhook.test"
    assert receiver.calls[0].headers["X-Webhook-Event"] == "webhook.test"
    assert receiver.signature_valid(receiver.calls[0], hook.secret)

    rows = admin.get("/api/v1/webhook-deliveries/?status=succeeded&event=webhook.test").json()
    assert [r["id"] for r in rows["results"]] == [delivery_id]
    assert admin.get("/api/v1/webhook-deliveries/?status=failed").json()["count"] == 0
    assert admin.get(f"/api/v1/webhook-deliveries/?webhook={hook.pk + 100}").json()["count"] == 0
    detail = admin.get(f"/api/v1/webhook-deliveries/{delivery_id}/").json()
    assert detail["status"] == "succeeded" and detail["payload"]["sent_by"] == "admin_a"
    assert detail["attempt_log"][0]["status_code"] == 200
    assert detail["attempt_log"][0]["response_body"] == '{"ok": true}'

    # Other members see that hooks exist and how deliveries went, not the URL or the answers.
    viewer = client_for(personas.viewer_a)
    assert viewer.get(f"/api/v1/webhooks/{hook.pk}/").json()["url"] == (
        receiver.url.split("/hook")[0] + "/…"
    )
    seen = viewer.get(f"/api/v1/webhook-deliveries/{delivery_id}/").json()
    assert seen["attempt_log"][0]["response_body"] == ""
    for path in ("test/", "rotate-secret/"):
        response = client_for(personas.researcher_a).post(f"/api/v1/webhooks/{hook.pk}/{path}")
        assert response.status_code == 403
    assert client_for(personas.admin_b).get(f"/api/v1/webhooks/{hook.pk}/").status_code == 404


def test_api_delete(personas, allow_private, receiver):
    hook = _hook(personas, receiver.url)
    services.webhooks_emit(lab_id=personas.lab_a.pk, event="training.job.failed", payload={})
    assert client_for(personas.researcher_a).delete(f"/api/v1/webhooks/{hook.pk}/").status_code == (
        403
    )
    assert client_for(personas.admin_a).delete(f"/api/v1/webhooks/{hook.pk}/").status_code == 204
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
