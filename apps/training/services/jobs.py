"""A training job's life outside the training loop: creation, the queue, the claim, cancel,
the attempts history, and recovery by the sweeper."""

from __future__ import annotations

import socket
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core import jobs
from apps.datasets.models import DatasetSnapshot
from apps.training.models import ModelVersion, TrainingJob
from apps.training.services.config import config_build
from apps.training.services.registry import ALIAS, ALIAS_RULE

LOG_LINES = 200


def _enqueue(job_id: int) -> None:
    from apps.training.tasks import training_run_task

    transaction.on_commit(lambda: training_run_task.apply_async(args=[job_id]))


def _enqueue_by_package(job_id: int) -> None:
    from apps.training import services  # the package's name: tests replace the queueing there

    services._enqueue(job_id)


def job_create(
    *, snapshot: DatasetSnapshot, actor, preset: str = "quick", name: str = "",
    overrides: dict[str, Any] | None = None, enqueue: bool = True, alias: str = "",
) -> TrainingJob:  # fmt: skip
    """A queued job training on ``snapshot`` (which must be ready) with ``preset`` and
    ``overrides``; queued on ``gpu`` once the transaction commits. ``alias`` (such as
    ``production``) is set on the version the job makes when it succeeds.

    Raises:
        ValidationError: the snapshot is not ready, a config field is out of bounds, or the
            alias is not a lowercase slug.
    """
    if alias and not ALIAS.match(alias):
        raise ValidationError({"alias": [ALIAS_RULE]})
    if snapshot.status != DatasetSnapshot.Status.READY:
        raise ValidationError(
            {
                "snapshot": [
                    f"Snapshot {snapshot.name!r} is {snapshot.status}: train on a ready one."
                ]
            }
        )
    config = config_build(
        preset=preset, overrides=dict(overrides or {}), num_classes=len(snapshot.classes)
    )
    with transaction.atomic():
        job = TrainingJob.objects.create(
            lab=snapshot.lab, snapshot=snapshot, preset=preset, config=config,
            created_by=actor if getattr(actor, "pk", None) else None,
            name=name or f"{snapshot.name} ({preset})", heartbeat_at=timezone.now(),
            alias_on_success=alias,
        )  # fmt: skip
        if enqueue:
            _enqueue_by_package(job.pk)
    return job


def queue_position(job: TrainingJob) -> int | None:
    """1 for the next queued job of the lab, 2 for the one after, ...; None unless queued."""
    if job.status != TrainingJob.Status.QUEUED:
        return None
    ahead = TrainingJob.objects.filter(
        lab_id=job.lab_id, status=TrainingJob.Status.QUEUED, pk__lt=job.pk
    ).count()
    return ahead + 1


def _close_attempt(job: TrainingJob, outcome: str, *, now=None) -> None:
    """Mark the open attempt (the last, without ``ended_at``) ended with ``outcome``."""
    log = list(job.attempt_log or [])
    if log and not log[-1].get("ended_at"):
        log[-1] = {**log[-1], "ended_at": (now or timezone.now()).isoformat(), "outcome": outcome}
    job.attempt_log = log


def append_log(job: TrainingJob, lines: list[str]) -> str:
    """``job.log_tail`` with ``lines`` added, kept to the last ``LOG_LINES`` lines."""
    kept = (job.log_tail.splitlines() if job.log_tail else []) + list(lines)
    return "\n".join(kept[-LOG_LINES:])


def job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Cancel a job: a queued one at once; a running one is asked to stop between batches (its
    worker ends it ``cancelled``, keeping its last checkpoint). A finished job is left alone."""
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == TrainingJob.Status.QUEUED:
            now = timezone.now()
            locked.status, locked.finished_at, locked.cancel_requested = "cancelled", now, True
            locked.stop_reason = "cancelled"
            _close_attempt(locked, "cancelled", now=now)
            locked.log_tail = append_log(locked, [f"{now:%H:%M:%S} cancelled while queued"])
            locked.save(update_fields=["status", "finished_at", "cancel_requested",
                                       "stop_reason", "attempt_log", "log_tail"])  # fmt: skip
            job_ended_emit(job=locked)
        elif locked.status == TrainingJob.Status.RUNNING and not locked.cancel_requested:
            locked.cancel_requested = True
            locked.save(update_fields=["cancel_requested"])
    return locked


def job_ended_emit(*, job: TrainingJob) -> None:
    """Tell the lab's webhooks that a job ended (``training.job.<status>``), sent once the
    surrounding transaction commits."""
    from apps.webhooks.services import webhooks_emit

    version = ModelVersion.objects.filter(job=job).values_list("pk", flat=True).first()
    webhooks_emit(
        lab_id=job.lab_id, event=f"training.job.{job.status}",
        payload={"job": job.pk, "name": job.name, "status": job.status,
                 "snapshot": job.snapshot_id, "model_version": version,
                 "error": job.error or "", "stop_reason": job.stop_reason or ""},
    )  # fmt: skip


def job_claim(*, job_id: int) -> TrainingJob | None:
    """Move a queued job to running under a row lock and open an attempt; None when it is not
    queued (a message delivered twice, a job cancelled or deleted since)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != TrainingJob.Status.QUEUED:
            return None
        now = timezone.now()
        job.status, job.heartbeat_at = TrainingJob.Status.RUNNING, now
        job.started_at = job.started_at or now
        job.attempts += 1
        job.batch, job.eta_s = 0, None
        job.attempt_log = [*(job.attempt_log or []), {
            "number": job.attempts, "started_at": now.isoformat(), "ended_at": None,
            "outcome": "running", "from_epoch": job.checkpoint_epoch,
            "worker": socket.gethostname(),
        }]  # fmt: skip
        job.log_tail = append_log(job, [
            f"{now:%H:%M:%S} attempt {job.attempts} started on {socket.gethostname()}"
            + (f", resuming after epoch {job.checkpoint_epoch}" if job.checkpoint_epoch else "")
        ])  # fmt: skip
        job.save(update_fields=["status", "heartbeat_at", "started_at", "attempts", "batch",
                                "eta_s", "attempt_log", "log_tail"])  # fmt: skip
        return job


# --- Recovery ----------------------------------------------------------------------------------


def _job_requeue(job: TrainingJob) -> None:
    """A job whose worker died goes back to the queue; its uploaded checkpoint stays, so the
    next attempt resumes after the last epoch that finished."""
    now = timezone.now()
    _close_attempt(job, "lost", now=now)
    if job.cancel_requested:  # nobody is left to honour the cancel: it is done
        job.status, job.heartbeat_at, job.finished_at = TrainingJob.Status.CANCELLED, now, now
        job.stop_reason, job.batch, job.eta_s = "cancelled", 0, None
        job.log_tail = append_log(job, [f"{now:%H:%M:%S} worker lost after a cancel: cancelled"])
        job.save(update_fields=["status", "heartbeat_at", "finished_at", "stop_reason", "batch",
                                "eta_s", "attempt_log", "log_tail"])  # fmt: skip
        job_ended_emit(job=job)
        return
    job.status, job.heartbeat_at, job.batch, job.eta_s = TrainingJob.Status.QUEUED, now, 0, None
    job.log_tail = append_log(job, [
        f"{now:%H:%M:%S} attempt {job.attempts} went silent (worker lost); queued again"
    ])  # fmt: skip
    job.save(update_fields=["status", "heartbeat_at", "batch", "eta_s", "attempt_log",
                            "log_tail"])  # fmt: skip


def _job_fail(job: TrainingJob, reason: str) -> None:
    now = timezone.now()
    _close_attempt(job, "lost", now=now)
    job.status, job.error = TrainingJob.Status.FAILED, f"The training {reason}."
    job.heartbeat_at = job.finished_at = now
    job.save(update_fields=["status", "error", "heartbeat_at", "finished_at", "attempt_log"])
    job_ended_emit(job=job)


def gpu_busy(alive_after) -> bool:
    """Whether the ``gpu`` queue has live work: a training job or an evaluation running with a
    heartbeat after ``alive_after``. Queued jobs behind it are waiting, not lost."""
    from apps.evaluation.models import Evaluation

    return (
        TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING,
                                   heartbeat_at__gte=alive_after).exists()
        or Evaluation.objects.filter(status=Evaluation.Status.RUNNING,
                                     heartbeat_at__gte=alive_after).exists()
    )  # fmt: skip


JOBS = jobs.JobKind(
    name="training jobs", model=TrainingJob, queued=TrainingJob.Status.QUEUED,
    running=TrainingJob.Status.RUNNING, requeue=_job_requeue, fail=_job_fail,
    enqueue=_enqueue_by_package, busy=gpu_busy,
)  # fmt: skip


def training_sweep(*, now=None) -> dict[str, list[int]]:
    """Recover training jobs that show no sign of life (``apps.core.jobs.sweep``)."""
    return jobs.sweep(JOBS, now=now)
