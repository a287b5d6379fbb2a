"""HTML pages of webhooks: the lab's hooks with a form to register one, and one hook (its
settings, enable/disable, test call, new secret, delete, and its deliveries with every attempt).

Every member of the lab sees the hooks and how their deliveries went; the lab's admins (the
API's rule: ``Action.MANAGE_MEMBERS``) register, change, test and delete them. As in the API, a
hook's full URL and its receivers' answers are shown to admins only (a URL can itself be a
credential), and a secret only in the response that created or rotated it (never stored in the
session, never on a later page). No script of its own: confirmations and copy buttons come from
``frontend/static/js/app.js``.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.labs.forms import add_service_error
from apps.labs.roles import Action, role_allows
from apps.webhooks import selectors, services
from apps.webhooks.models import SUBSCRIBABLE_EVENTS, Event, Webhook, WebhookDelivery

DELIVERIES_SHOWN = 50
NOT_ADMIN = "Only the lab's admins manage its webhooks."


class WebhookForm(forms.Form):
    # The lab the page showed: a lab switched in another tab meanwhile does not get the hook.
    lab = forms.CharField(required=False, widget=forms.HiddenInput)
    url = forms.URLField(
        max_length=2000, label="URL", assume_scheme="https",
        widget=forms.TextInput(attrs={"inputmode": "url", "placeholder": "https://…"}),
        help_text="Called with a signed JSON POST; it must resolve to public addresses only.",
    )  # fmt: skip
    events = forms.MultipleChoiceField(
        choices=[(e, f"{Event(e).label} ({e})") for e in SUBSCRIBABLE_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )
    active = forms.BooleanField(required=False, initial=True, label="Active")


def _lab(request: HttpRequest):
    return request.lab if getattr(request, "lab", None) else None


def _can_manage(request: HttpRequest) -> bool:
    return bool(_lab(request)) and role_allows(request.lab_role, Action.MANAGE_MEMBERS)


def _require_manage(request: HttpRequest) -> None:
    if not _can_manage(request):
        raise PermissionDenied(NOT_ADMIN)


def _hook_or_404(request: HttpRequest, pk: int) -> Webhook:
    lab = _lab(request)
    hook = selectors.webhook_list(lab=lab).filter(pk=pk).first() if lab else None
    if hook is None:
        raise Http404("No such webhook in this lab.")
    return hook


def _shown_url(hook: Webhook, full: bool) -> str:
    """The URL for the lab's admins; its origin only for other members (as the API does)."""
    if full:
        return hook.url
    parts = urlsplit(hook.url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def _list_page(
    request: HttpRequest,
    form: WebhookForm | None = None,
    created: Webhook | None = None,
    status: int = 200,
) -> HttpResponse:
    lab = _lab(request)
    can_manage = _can_manage(request)
    hooks = list(selectors.webhook_list(lab=lab)) if lab else []
    for hook in hooks:
        hook.shown_url = _shown_url(hook, can_manage)
        hook.event_labels = [Event(e).label if e in Event.values else e for e in hook.events]
    if can_manage and form is None:
        form = WebhookForm(initial={"lab": lab.pk})
    context = {
        "hooks": hooks,
        "form": form if can_manage else None,
        "can_manage": can_manage,
        "created": created,
    }
    return render(request, "webhooks/list.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    """The lab's hooks; a POST registers one (lab admins) and shows its secret in this
    response only."""
    if request.method == "GET":
        return _list_page(request)
    _require_manage(request)
    lab = _lab(request)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form=form, status=400)
    data = form.cleaned_data
    if data["lab"] != str(lab.pk):
        again = request.POST.copy()
        again["lab"] = str(lab.pk)
        form = WebhookForm(again)
        form.is_valid()
        form.add_error(None, f"The current lab is now {lab.name}: check the form, send it again.")
        return _list_page(request, form=form, status=400)
    try:
        hook = services.webhook_create(
            lab=lab, actor=request.user, url=data["url"], events=data["events"],
            active=data["active"],
        )  # fmt: skip
    except PermissionDenied as exc:
        add_service_error(form, exc)
        return _list_page(request, form=form, status=403)
    except ValidationError as exc:
        add_service_error(form, exc)
        return _list_page(request, form=form, status=400)
    return _list_page(request, created=hook)


def _hook_page(request: HttpRequest, hook: Webhook, secret: str | None = None) -> HttpResponse:
    can_manage = _can_manage(request)
    lab = _lab(request)
    total = selectors.delivery_list(lab=lab, webhook=hook).count()
    deliveries = list(selectors.delivery_list(lab=lab, webhook=hook)[:DELIVERIES_SHOWN])
    for delivery in deliveries:
        delivery.payload_text = json.dumps(delivery.payload, indent=2, sort_keys=True)
        delivery.attempt_rows = list(delivery.attempt_log.all())
        delivery.pending = delivery.status == WebhookDelivery.Status.PENDING
    context = {
        "hook": hook,
        "shown_url": _shown_url(hook, can_manage),
        "event_labels": [Event(e).label if e in Event.values else e for e in hook.events],
        "deliveries": deliveries,
        "total": total,
        "can_manage": can_manage,
        "secret": secret,
    }
    return render(request, "webhooks/hook.html", context)


@never_cache
@login_required
@require_GET
def webhook_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One hook: its settings, its deliveries (latest first) and each delivery's attempts."""
    return _hook_page(request, _hook_or_404(request, pk))


@never_cache
@login_required
@require_POST
def webhook_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Enable or disable a hook (lab admins); the form says which, so a resubmit changes
    nothing."""
    hook = _hook_or_404(request, pk)
    _require_manage(request)
    active = request.POST.get("active") == "1"
    services.webhook_update(webhook=hook, actor=request.user, active=active)
    messages.success(request, f"Webhook {'enabled' if active else 'disabled'}.")
    return redirect("webhooks-hook", pk=hook.pk)


@never_cache
@login_required
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a ``webhook.test`` call to this hook (lab admins); a worker makes the call."""
    hook = _hook_or_404(request, pk)
    _require_manage(request)
    services.webhook_test(webhook=hook, actor=request.user)
    messages.success(request, "Test call queued: its delivery appears below.")
    return redirect("webhooks-hook", pk=hook.pk)


@never_cache
@login_required
@require_POST
def webhook_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """Give the hook a new secret (lab admins), shown in this response only."""
    hook = _hook_or_404(request, pk)
    _require_manage(request)
    hook = services.webhook_rotate_secret(webhook=hook, actor=request.user)
    return _hook_page(request, hook, secret=hook.secret)


@never_cache
@login_required
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a hook with its deliveries (lab admins)."""
    hook = _hook_or_404(request, pk)
    _require_manage(request)
    url = hook.url
    services.webhook_delete(webhook=hook, actor=request.user)
    messages.success(request, f"Webhook {url} deleted with its deliveries.")
    return redirect("webhooks")
