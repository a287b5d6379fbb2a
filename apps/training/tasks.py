"""Background work of the training app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.training import services


@shared_task(
    name="training.run", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_GPU_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_GPU_TASK_TIME_LIMIT,
)  # fmt: skip
def training_run_task(job_id: int) -> str:
    """Train a queued job (idempotent: a job that is not queued is left alone).

    Runs on the ``gpu`` queue (``CELERY_TASK_ROUTES``). A worker lost mid-run leaves the
    message unacknowledged (redelivered) and the job silent (the sweeper queues it again);
    either way the next attempt resumes from the last uploaded checkpoint.
    """
    job = services.job_run(job_id=job_id)
    return job.status if job is not None else "skipped"


@shared_task(name="training_sweep", ignore_result=True)
def training_sweep_task() -> dict[str, list[int]]:
    """Recover training jobs that show no sign of life (periodic, from celery beat; named
    outside ``training.*`` so that it runs on ``default``, not ``gpu``)."""
    return services.training_sweep()
