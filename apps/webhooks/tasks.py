"""Background work of the webhooks app (thin: the task calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)  # fmt: skip
def webhook_deliver_task(delivery_id: int) -> str:
    """Make one call for a pending delivery (queue ``default``).

    Idempotent: a delivery that is finished, being called by another worker, or not due yet is
    left alone. A failed call schedules the next one itself (``countdown``, exponential backoff)
    until ``WEBHOOK_MAX_ATTEMPTS``.
    """
    delivery = services.webhook_deliver(delivery_id=delivery_id)
    return delivery.status if delivery is not None else "skipped"
