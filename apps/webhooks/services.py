"""Webhooks: registration (lab admins), emitting events, and the signed delivery with retries.

Who: creating, changing, deleting, rotating and testing a hook needs ``Action.MANAGE_MEMBERS``
(the lab's admins): a hook sends the lab's events to a place outside the platform, as an
invitation lets someone in, and its secret signs in the lab's name.

Signature: every call carries ``X-Webhook-Timestamp`` (unix seconds) and
``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``, the body being
the exact bytes sent. A receiver recomputes it and refuses old timestamps (replays).

SSRF: a URL is resolved (every address ``getaddrinfo`` gives) and refused when any address is
loopback, private, link-local, multicast, reserved, unspecified or otherwise not global, unless
``WEBHOOKS_ALLOW_PRIVATE_URLS`` is on: at registration (400) and again at each delivery, where
the call then connects to the very address that was checked (the Host header and the TLS name
stay the URL's host), so a DNS answer that changes between the check and the connection
(rebinding) cannot send it elsewhere. Redirects are never followed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.labs.models import Lab, User
from apps.labs.roles import Action
from apps.labs.services import require_action
from apps.webhooks.models import (
    SUBSCRIBABLE_EVENTS,
    Event,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)

log = logging.getLogger(__name__)

USER_AGENT = "cxr-gaze-webhooks/1"
TIMEOUT_S = 5.0  # connect and read, per call
DNS_TIMEOUT_S = 3.0  # a name that does not resolve in time is refused
RETRY_BASE_S = 10.0  # then 20, 40, ... (exponential backoff)
RETRY_CAP_S = 3600.0
RESPONSE_EXCERPT_BYTES = 1024
MAX_EVENTS = len(SUBSCRIBABLE_EVENTS)


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- The SSRF guard -------------------------------------------------------------------------


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, within ``DNS_TIMEOUT_S``."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        infos = future.result(timeout=DNS_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        raise ValidationError(f"The host {host!r} did not resolve in time.") from None
    except (OSError, UnicodeError):
        raise ValidationError(f"The host {host!r} does not resolve.") from None
    finally:
        pool.shutdown(wait=False)
    addresses = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 scope id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ValidationError(f"The host {host!r} does not resolve.")
    return addresses


def _not_public(address: str) -> str | None:
    """Why ``address`` is not a public one (None when it is)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for prop in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{prop}"):
            return prop.replace("_", "-")
    if not ip.is_global:
        return "not global"
    return None


def webhook_url_check(*, url: str) -> tuple[str, int, list[str]]:
    """Check ``url`` as a webhook target: (host, port, the addresses it resolves to).

    Raises ``ValidationError`` for another scheme than http or https, credentials in the URL,
    a name that does not resolve, or (unless ``WEBHOOKS_ALLOW_PRIVATE_URLS``) any address that
    is not public.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("Only http and https URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("A webhook URL may not carry credentials (user:password@).")
    host = parts.hostname
    if not host:
        raise ValidationError("Enter a valid URL.")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        for address in addresses:
            why = _not_public(address)
            if why is not None:
                raise ValidationError(
                    f"The host {host!r} resolves to {address}, a {why} address: webhooks only "
                    "call public addresses."
                )
    return host, port, addresses


def _checked_url(url: str) -> str:
    try:
        webhook_url_check(url=url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.messages}) from None
    return url


def _checked_events(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError({"events": ["Choose at least one event."]})
    unknown = [e for e in events if e not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise ValidationError(
            {"events": [f"Unknown event {unknown[0]!r}; one of {', '.join(SUBSCRIBABLE_EVENTS)}."]}
        )
    return [e for e in SUBSCRIBABLE_EVENTS if e in events]  # the vocabulary's order, once each


# --- Registration ---------------------------------------------------------------------------


def webhook_create(*, lab: Lab, actor: User, url: str, events, active: bool = True) -> Webhook:
    """Register ``url`` for ``events`` in ``lab`` (lab admins). ``hook.secret`` is the secret,
    to be shown once."""
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    events = _checked_events(events)
    url = _checked_url(url)
    return Webhook.objects.create(
        lab=lab, url=url, events=events, active=active, secret=_new_secret(), created_by=actor
    )


def webhook_update(*, webhook: Webhook, actor: User, **fields) -> Webhook:
    """Change a hook's ``url``, ``events`` or ``active`` (lab admins)."""
    require_action(user=actor, lab=webhook.lab, action=Action.MANAGE_MEMBERS)
    unknown = set(fields) - {"url", "events", "active"}
    if unknown:
        raise ValueError(f"Not a webhook field to change: {sorted(unknown)}")
    if "events" in fields:
        webhook.events = _checked_events(fields["events"])
    if "url" in fields and fields["url"] != webhook.url:
        webhook.url = _checked_url(fields["url"])
    if "active" in fields:
        webhook.active = bool(fields["active"])
    webhook.save(update_fields=["url", "events", "active"])
    return webhook


def webhook_delete(*, webhook: Webhook, actor: User) -> None:
    """Delete a hook with its deliveries (lab admins); deliveries in flight end as skipped."""
    require_action(user=actor, lab=webhook.lab, action=Action.MANAGE_MEMBERS)
    webhook.delete()


def webhook_rotate_secret(*, webhook: Webhook, actor: User) -> Webhook:
    """Give the hook a new secret (lab admins): calls from now on are signed with it."""
    require_action(user=actor, lab=webhook.lab, action=Action.MANAGE_MEMBERS)
    webhook.secret = _new_secret()
    webhook.secret_rotated_at = timezone.now()
    webhook.save(update_fields=["secret", "secret_rotated_at"])
    return webhook


def webhook_test(*, webhook: Webhook, actor: User) -> WebhookDelivery:
    """Send a ``webhook.test`` call to this hook only (lab admins), active or not."""
    require_action(user=actor, lab=webhook.lab, action=Action.MANAGE_MEMBERS)
    payload = {"message": "A test call from the CXR gaze platform.", "sent_by": actor.username}
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            webhook=webhook, event=Event.TEST, payload=payload, next_attempt_at=timezone.now()
        )
        _enqueue(delivery.pk)
    return delivery


# --- Emitting -------------------------------------------------------------------------------


def webhooks_emit(*, lab_id: int, event: str, payload: dict) -> list[WebhookDelivery]:
    """Record ``event`` for every active hook of the lab subscribed to it, and send each once
    the surrounding transaction commits (a rolled-back event sends nothing).

    The one function other apps call; ``payload`` is any JSON-serialisable dict (dates and
    decimals as ``DjangoJSONEncoder`` writes them). Sending happens on a worker, never here.
    """
    if event not in SUBSCRIBABLE_EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}; one of {SUBSCRIBABLE_EVENTS}.")
    payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    hooks = [
        hook
        for hook in Webhook.objects.filter(lab_id=lab_id, active=True).order_by("id")
        if event in (hook.events or [])
    ]
    if not hooks:
        return []
    now = timezone.now()
    with transaction.atomic():
        deliveries = [
            WebhookDelivery.objects.create(
                webhook=hook, event=event, payload=payload, next_attempt_at=now
            )
            for hook in hooks
        ]
        for delivery in deliveries:
            _enqueue(delivery.pk)
    return deliveries


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    from apps.webhooks.tasks import webhook_deliver_task

    def send() -> None:
        webhook_deliver_task.apply_async(args=[delivery_id], countdown=countdown or None)

    transaction.on_commit(send)


# --- Delivering -----------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"{ts}.{body}"``."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _backoff_s(attempts: int) -> float:
    return min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempts - 1))


def _body(delivery: WebhookDelivery) -> bytes:
    envelope = {
        "id": delivery.pk,
        "event": delivery.event,
        "lab": delivery.webhook.lab_id,
        "webhook": delivery.webhook_id,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the delivery for one call, under a row lock: None when it is not due here."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("webhook")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return None
        if delivery.locked_until is not None and delivery.locked_until > now:
            # Another worker is calling right now (a redelivered message): look again when
            # its lock runs out, in case that worker died.
            _enqueue(delivery_id, countdown=(delivery.locked_until - now).total_seconds() + 1)
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + timedelta(
            seconds=1
        ):
            return None  # a duplicate message: the message for the next attempt is scheduled
        delivery.attempts += 1
        delivery.locked_until = now + timedelta(seconds=3 * TIMEOUT_S + DNS_TIMEOUT_S + 30)
        delivery.save(update_fields=["attempts", "locked_until"])
    return delivery


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST ``body`` to ``url`` at the address the SSRF guard checked; no redirects."""
    host, port, addresses = webhook_url_check(url=url)
    parts = urlsplit(url)
    address = addresses[0]
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(host, port, timeout=TIMEOUT_S)

    def connect_checked(_address, timeout, source_address=None):
        # Pin the connection to the checked address; Host header and TLS name stay ``host``.
        return socket.create_connection((address, port), timeout, source_address)

    conn._create_connection = connect_checked
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        excerpt = response.read(RESPONSE_EXCERPT_BYTES)
        return response.status, excerpt
    finally:
        conn.close()


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one call for a pending delivery (the task's body), log it as an attempt, and decide:
    2xx succeeds; anything else is retried with exponential backoff until
    ``WEBHOOK_MAX_ATTEMPTS`` calls were made, then the delivery fails.

    Returns None when there was nothing to do (already finished, another worker calling, or
    not due yet). Idempotent: the claim is made under ``select_for_update``.
    """
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    hook = delivery.webhook
    body = _body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Event": delivery.event,
        "X-Webhook-Delivery": str(delivery.pk),
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": webhook_signature(
            secret=hook.secret, timestamp=timestamp, body=body
        ),
    }
    started_at = timezone.now()
    clock = time.monotonic()
    status_code, excerpt, error = None, b"", ""
    try:
        status_code, excerpt = _post(hook.url, body, headers)
    except ValidationError as exc:
        error = "Refused: " + " ".join(exc.messages)
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    duration_ms = int((time.monotonic() - clock) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    now = timezone.now()
    with transaction.atomic():
        if not WebhookDelivery.objects.filter(pk=delivery.pk).exists():
            return None  # the hook was deleted meanwhile
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error[:500],
            response_body=excerpt.decode("utf-8", errors="replace"),
        )
        delivery.locked_until = None
        if ok:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.next_attempt_at = None
            delivery.finished_at = now
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
            delivery.finished_at = now
        else:
            wait = _backoff_s(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            _enqueue(delivery.pk, countdown=wait)
        delivery.save(update_fields=["status", "next_attempt_at", "finished_at", "locked_until"])
    log.info(
        "webhook delivery %s attempt %s: %s",
        delivery.pk,
        delivery.attempts,
        status_code if status_code is not None else error,
    )
    return delivery
