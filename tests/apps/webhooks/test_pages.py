"""The webhooks pages: the lab's hooks with the form to add one (secret shown once), one hook
(enable/disable, test call, new secret, delete) with its deliveries and their attempts; roles,
bad input and tenancy."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.webhooks import services
from apps.webhooks.models import Webhook, WebhookDelivery
from config.celery import app

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://8.8.8.8/hooks/lab-a-path"  # an IP literal: checked without the network
EVENTS = ["training.job.succeeded", "model.alias.set"]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _hook(p, url=PUBLIC_URL, **kwargs) -> Webhook:
    return services.webhook_create(lab=p.lab_a, actor=p.admin_a, url=url, events=EVENTS, **kwargs)


def _form(p, **overrides) -> dict:
    return {"lab": p.lab_a.pk, "url": PUBLIC_URL, "events": EVENTS, "active": "on", **overrides}


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_admin_adds_a_hook_and_sees_its_secret_once(personas):
    admin = _client(personas.admin_a)
    page = admin.get("/webhooks/").content.decode()
    assert 'id="webhook-form"' in page and 'id="no-webhooks"' in page
    assert 'value="training.job.cancelled"' in page  # every event is a choice
    assert 'value="webhook.test"' not in page  # sent by the test button only
    assert 'href="/webhooks/"' in admin.get("/").content.decode()  # the nav link

    response = admin.post("/webhooks/", _form(personas))
    assert response.status_code == 200
    hook = Webhook.objects.get()
    assert hook.lab == personas.lab_a and hook.events == EVENTS and hook.active
    assert hook.created_by == personas.admin_a
    content = response.content.decode()
    assert 'id="new-webhook"' in content and hook.secret in content
    assert "<script>" not in content  # CSP: scripts come from files only
    assert response["Cache-Control"].startswith("max-age=0")

    listed = admin.get("/webhooks/").content.decode()
    assert PUBLIC_URL in listed and f"/webhooks/{hook.pk}/" in listed
    assert hook.secret not in listed
    assert hook.secret not in admin.get(f"/webhooks/{hook.pk}/").content.decode()


def test_members_see_the_hooks_but_not_the_full_url_or_the_form(personas):
    hook = _hook(personas)
    for user in (personas.viewer_a, personas.reader_a, personas.researcher_a):
        client = _client(user)
        listed = client.get("/webhooks/").content.decode()
        assert "https://8.8.8.8/…" in listed and "lab-a-path" not in listed
        assert 'id="webhook-form"' not in listed
        page = client.get(f"/webhooks/{hook.pk}/")
        assert page.status_code == 200
        content = page.content.decode()
        assert "lab-a-path" not in content and 'id="webhook-actions"' not in content
        assert hook.secret not in content


def test_non_admins_are_refused_every_write(personas):
    hook = _hook(personas)
    for user in (personas.viewer_a, personas.researcher_a):
        client = _client(user)
        response = client.post("/webhooks/", _form(personas, url="https://8.8.4.4/"))
        assert response.status_code == 403
        assert b"admins" in response.content
        assert client.post(f"/webhooks/{hook.pk}/toggle/", {"active": "0"}).status_code == 403
        assert client.post(f"/webhooks/{hook.pk}/test/").status_code == 403
        assert client.post(f"/webhooks/{hook.pk}/rotate-secret/").status_code == 403
        assert client.post(f"/webhooks/{hook.pk}/delete/").status_code == 403
    assert list(Webhook.objects.all()) == [hook]
    reloaded = Webhook.objects.get()
    assert reloaded.active and reloaded.secret == hook.secret
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "http://127.0.0.1:8000/hook"}, "a loopback address: webhooks only call public"),
        ({"url": "http://10.1.2.3/hook"}, "a private address: webhooks only call public"),
        ({"url": "ftp://8.8.8.8/"}, "Only http and https URLs are allowed."),
        ({"url": "http://user:pw@8.8.8.8/"}, "may not carry credentials"),
        ({"url": "not a url"}, "Enter a valid URL."),
        ({"url": ""}, "This field is required."),
        ({"events": []}, "Choose at least one event."),
        ({"events": ["webhook.test"]}, "Select a valid choice."),
        ({"events": ["no.such.event"]}, "Select a valid choice."),
    ],
)
def test_bad_input_is_shown_on_the_page_and_stores_nothing(personas, overrides, message):
    response = _client(personas.admin_a).post("/webhooks/", _form(personas, **overrides))
    assert response.status_code == 400
    content = response.content.decode()
    assert message in content.replace("&#x27;", "'"), content
    assert 'class="field has-error"' in content and 'id="webhook-form"' in content
    assert not Webhook.objects.exists()


def test_a_form_for_another_lab_is_not_saved_in_the_current_one(personas):
    response = _client(personas.admin_a).post("/webhooks/", _form(personas, lab=personas.lab_b.pk))
    assert response.status_code == 400
    assert b"The current lab is now Lab A" in response.content
    assert f'value="{personas.lab_a.pk}"'.encode() in response.content  # ready to resend
    assert not Webhook.objects.exists()


def test_disable_enable_and_delete(personas):
    hook = _hook(personas)
    admin = _client(personas.admin_a)
    assert b'id="webhook-disable"' in admin.get(f"/webhooks/{hook.pk}/").content
    response = admin.post(f"/webhooks/{hook.pk}/toggle/", {"active": "0"})
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{hook.pk}/"
    hook.refresh_from_db()
    assert not hook.active
    page = admin.get(f"/webhooks/{hook.pk}/").content.decode()
    assert "Webhook disabled." in page and 'id="webhook-enable"' in page
    # The form says what it wants: sending it again changes nothing.
    admin.post(f"/webhooks/{hook.pk}/toggle/", {"active": "0"})
    hook.refresh_from_db()
    assert not hook.active
    admin.post(f"/webhooks/{hook.pk}/toggle/", {"active": "1"})
    hook.refresh_from_db()
    assert hook.active

    services.webhooks_emit(lab_id=personas.lab_a.pk, event="model.alias.set", payload={})
    response = admin.post(f"/webhooks/{hook.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/webhooks/"
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    assert "deleted" in admin.get("/webhooks/").content.decode()
    assert admin.get(f"/webhooks/{hook.pk}/").status_code == 404


def test_a_new_secret_is_shown_once(personas):
    hook = _hook(personas)
    admin = _client(personas.admin_a)
    response = admin.post(f"/webhooks/{hook.pk}/rotate-secret/")
    assert response.status_code == 200
    old = hook.secret
    hook.refresh_from_db()
    assert hook.secret != old and hook.secret_rotated_at is not None
    assert hook.secret in response.content.decode()
    assert hook.secret not in admin.get(f"/webhooks/{hook.pk}/").content.decode()


def test_test_call_deliveries_and_attempts_are_shown(
    personas, allow_private, receiver, eager, django_capture_on_commit_callbacks
):
    hook = _hook(personas, url=receiver.url)
    admin = _client(personas.admin_a)
    assert b'id="no-deliveries"' in admin.get(f"/webhooks/{hook.pk}/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/webhooks/{hook.pk}/test/")
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{hook.pk}/"
    test_call = WebhookDelivery.objects.get(event="webhook.test")
    assert test_call.status == "succeeded"
    assert receiver.signature_valid(receiver.calls[0], hook.secret)

    # A failed first call waits for its retry; a call that cannot connect logs its error.
    receiver.statuses = [500]
    (retried,) = services.webhooks_emit(
        lab_id=personas.lab_a.pk, event="model.alias.set", payload={"alias": "production"}
    )
    services.webhook_deliver(delivery_id=retried.pk)
    retried.refresh_from_db()
    assert retried.status == "pending" and retried.next_attempt_at is not None
    refused = Webhook.objects.create(
        lab=personas.lab_a, url="http://127.0.0.1:1/", secret="whsec_x", events=EVENTS
    )
    unreachable = WebhookDelivery.objects.create(webhook=refused, event="model.alias.set")
    services.webhook_deliver(delivery_id=unreachable.pk)

    content = admin.get(f"/webhooks/{hook.pk}/").content.decode()
    assert "Test call queued" in content
    assert f'id="delivery-{test_call.pk}"' in content and f'id="delivery-{retried.pk}"' in content
    assert f'id="delivery-{unreachable.pk}"' not in content  # another hook's
    assert '<td class="attempt-status">200</td>' in content
    assert '<td class="attempt-status">500</td>' in content
    assert "Next attempt" in content and "Next retry" in content
    assert "&quot;alias&quot;: &quot;production&quot;" in content  # the payload
    assert "{&quot;ok&quot;: true}" in content and "oops" in content  # the answers, for admins
    errored = admin.get(f"/webhooks/{refused.pk}/").content.decode()
    assert "ConnectionRefusedError" in errored
    assert '<td class="attempt-status">—</td>' in errored

    seen = _client(personas.viewer_a).get(f"/webhooks/{hook.pk}/").content.decode()
    assert '<td class="attempt-status">500</td>' in seen
    assert "oops" not in seen and "{&quot;ok&quot;: true}" not in seen  # answers: admins only


def test_another_lab_gets_404_and_sees_nothing(personas):
    hook = _hook(personas)
    other = _client(personas.admin_b)  # the most privileged member of lab B
    assert other.get(f"/webhooks/{hook.pk}/").status_code == 404
    for action in ("toggle", "test", "rotate-secret", "delete"):
        assert other.post(f"/webhooks/{hook.pk}/{action}/", {"active": "0"}).status_code == 404
    listed = other.get("/webhooks/").content.decode()
    assert "8.8.8.8" not in listed and 'id="no-webhooks"' in listed
    reloaded = Webhook.objects.get()
    assert reloaded.active and reloaded.secret == hook.secret
    assert not WebhookDelivery.objects.exists()


def test_anonymous_is_sent_to_sign_in_and_an_outsider_sees_no_lab(personas):
    hook = _hook(personas)
    anonymous = Client()
    for path in ("/webhooks/", f"/webhooks/{hook.pk}/"):
        response = anonymous.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert anonymous.post(f"/webhooks/{hook.pk}/delete/").status_code == 302
    outsider = _client(personas.outsider)
    assert b"not a member of any lab" in outsider.get("/webhooks/").content
    assert outsider.get(f"/webhooks/{hook.pk}/").status_code == 404
    assert outsider.post("/webhooks/", _form(personas)).status_code == 403
    assert Webhook.objects.count() == 1
