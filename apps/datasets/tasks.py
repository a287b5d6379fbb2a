"""Background work of the datasets app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.datasets import services


@shared_task(name="datasets.snapshot_build", acks_late=True, reject_on_worker_lost=True)
def snapshot_build_task(snapshot_id: int) -> str:
    """Build a queued snapshot (idempotent: a snapshot that is not queued is left alone).

    Runs on the ``default`` queue (``CELERY_TASK_ROUTES``), with the CPU workers.
    """
    snapshot = services.snapshot_build(snapshot_id=snapshot_id)
    return snapshot.status if snapshot is not None else "skipped"


@shared_task(name="datasets.snapshots_sweep", ignore_result=True)
def snapshots_sweep_task() -> dict[str, list[int]]:
    """Recover snapshot builds that show no sign of life (periodic, from celery beat)."""
    return services.snapshots_sweep()
