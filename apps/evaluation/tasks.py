"""Background work of the evaluation app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.evaluation import services


@shared_task(
    name="evaluation.run", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_GPU_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_GPU_TASK_TIME_LIMIT,
)  # fmt: skip
def evaluation_run_task(evaluation_id: int) -> str:
    """Evaluate a queued evaluation on the ``gpu`` queue (idempotent: one that is not queued is
    left alone); a worker lost mid-run leaves it silent, and the sweeper starts it over."""
    evaluation = services.evaluation_run(evaluation_id=evaluation_id)
    return evaluation.status if evaluation is not None else "skipped"


@shared_task(name="evaluation_sweep", ignore_result=True)
def evaluation_sweep_task() -> dict[str, list[int]]:
    """Recover evaluations that show no sign of life (periodic, from celery beat, on
    ``default``)."""
    return services.evaluation_sweep()
