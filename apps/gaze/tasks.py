"""Background work of the gaze app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.gaze import services


@shared_task(name="gaze.recording_parse", acks_late=True,
             reject_on_worker_lost=True, bind=True, max_retries=5)  # fmt: skip
def recording_parse_task(self, recording_id: int) -> str:
    """Parse a queued recording (idempotent: a recording that is not queued is left alone).

    A claim that fails (the database was locked or unreachable) leaves the recording queued and
    is retried with a growing delay; past the retries, the sweeper queues it again.
    """
    try:
        rec = services.recording_parse(recording_id=recording_id)
    except services.RecordingClaimFailed as exc:
        raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1))) from exc
    return rec.status if rec is not None else "skipped"


@shared_task(name="gaze.recordings_sweep", ignore_result=True)
def recordings_sweep_task() -> dict[str, list[int]]:
    """Recover recordings whose parse shows no sign of life (periodic, from celery beat)."""
    return services.recordings_sweep()
