"""Webhooks: URLs a lab registers to be called when something happens (a training job ends, a
model version gets an alias).

A ``Webhook`` is a lab's URL, its signing secret and the events it listens to; each event sent to
it is a ``WebhookDelivery`` (the payload, its status and the next attempt's time), and each HTTP
call made for a delivery is a ``WebhookAttempt`` (status code or error, duration, the first KB
of the answer), so a lab sees what was sent and what its receiver said.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from apps.labs.models import Lab


class Event(models.TextChoices):
    JOB_SUCCEEDED = "training.job.succeeded", "Training job succeeded"
    JOB_FAILED = "training.job.failed", "Training job failed"
    JOB_CANCELLED = "training.job.cancelled", "Training job cancelled"
    ALIAS_SET = "model.alias.set", "Model version alias set"
    TEST = "webhook.test", "Test call"


# What a hook may subscribe to; ``webhook.test`` is only ever sent by the "test" action.
SUBSCRIBABLE_EVENTS: tuple[str, ...] = tuple(e.value for e in Event if e != Event.TEST)


class Webhook(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    secret = models.CharField(
        max_length=100, help_text="Signs every call (HMAC-SHA256); shown once, on creation and "
        "on rotation."
    )  # fmt: skip
    events = models.JSONField(default=list, help_text="Event names this hook is called for.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=Event.choices)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Calls made so far.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker is calling the receiver: a redelivered message leaves it alone.
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["webhook", "status"], name="webhooks_deliv_hook_status")]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_body = models.TextField(blank=True, help_text="The first KB of the answer.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
