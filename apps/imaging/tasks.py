"""Background work of the imaging app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.imaging import services


@shared_task(name="imaging.upload_batch_run", acks_late=True, reject_on_worker_lost=True)
def upload_batch_run_task(batch_id: int) -> str:
    """Ingest a queued upload batch (idempotent: a batch that is not queued is left alone).

    Runs on the ``default`` queue (``CELERY_TASK_DEFAULT_QUEUE``), with the CPU workers.
    """
    batch = services.upload_batch_run(batch_id=batch_id)
    return batch.status if batch is not None else "skipped"


@shared_task(name="imaging.batches_sweep", ignore_result=True)
def upload_batches_sweep_task() -> dict[str, list[int]]:
    """Recover upload batches whose ingest shows no sign of life (periodic, from celery beat)."""
    return services.upload_batches_sweep()
