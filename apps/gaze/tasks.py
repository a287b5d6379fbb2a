"""Background work of the gaze app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.gaze import services


@shared_task(name="gaze.recording_parse", queue="default", acks_late=True,
             reject_on_worker_lost=True)  # fmt: skip
def recording_parse_task(recording_id: int) -> str:
    """Parse a queued recording (idempotent: a recording that is not queued is left alone)."""
    rec = services.recording_parse(recording_id=recording_id)
    return rec.status if rec is not None else "skipped"
