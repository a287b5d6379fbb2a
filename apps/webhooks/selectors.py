"""Reads of the webhooks app, always scoped to a lab."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.labs.models import Lab
from apps.webhooks.models import Webhook, WebhookDelivery


def webhook_list(*, lab: Lab) -> QuerySet[Webhook]:
    return Webhook.objects.filter(lab=lab).select_related("created_by")


def delivery_list(*, lab: Lab, webhook: Webhook | None = None) -> QuerySet[WebhookDelivery]:
    queryset = WebhookDelivery.objects.filter(webhook__lab=lab).select_related("webhook")
    if webhook is not None:
        queryset = queryset.filter(webhook=webhook)
    return queryset.prefetch_related("attempt_log")
