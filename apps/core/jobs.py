"""The sweeper of background jobs whose worker went silent, for every app that queues work.

A job is a row with ``status``, ``heartbeat_at`` (set when it is queued, claimed, and at each
progress report), ``attempts`` (starts) and ``created_at``. Celery messages carry its id only and
a claim under a row lock takes a queued job once, so queueing a job again is always safe. The
sweep recovers what no live task holds:

- queued for ``SWEEP_QUEUED_AFTER_S`` (a lost message, a claim that failed): queued again,
  unless its queue is busy with live work (:attr:`JobKind.busy`): then it is waiting its turn,
  and sending it again would only pile copies up in the broker;
- running with no heartbeat for ``SWEEP_RUNNING_AFTER_S`` (its worker died): reset and queued
  again, or failed with the reason after ``SWEEP_MAX_ATTEMPTS`` starts.

Each app declares its kind of job (:class:`JobKind`) and runs :func:`sweep` from a periodic task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    """How one app's jobs are recovered.

    Attributes:
        name: for the log ("recordings", "upload batches", ...).
        model: the job's model.
        queued, running: its status values.
        requeue: puts a locked job whose worker died back to queued (its own clean-up included,
            such as the files of a half-done build), saving it.
        fail: marks a locked job failed with the reason, saving it.
        enqueue: sends the job's id to its queue once the transaction commits.
        busy: given the time before which a heartbeat means a dead worker, whether the kind's
            queue is busy with live work (a GPU worker training for hours): its queued jobs are
            then waiting their turn, not lost. None: never.
    """

    name: str
    model: type[models.Model]
    queued: str
    running: str
    requeue: Callable[[models.Model], None]
    fail: Callable[[models.Model, str], None]
    enqueue: Callable[[int], None]
    busy: Callable[[datetime], bool] | None = None


def sweep(kind: JobKind, *, now=None, after_s: float | None = None) -> dict[str, list[int]]:
    """Recover ``kind``'s jobs with no sign of life; returns the ids of each outcome.

    ``after_s`` is how long a silence means the worker is lost (default: the settings
    ``SWEEP_QUEUED_AFTER_S`` and ``SWEEP_RUNNING_AFTER_S``); 0 where no worker can be alive,
    such as the demo's start before its only worker."""
    now = now or timezone.now()
    queued_after = settings.SWEEP_QUEUED_AFTER_S if after_s is None else after_s
    running_after = settings.SWEEP_RUNNING_AFTER_S if after_s is None else after_s
    queued_before = now - timedelta(seconds=queued_after)
    running_before = now - timedelta(seconds=running_after)
    done: dict[str, list[int]] = {"queued_again": [], "recovered": [], "failed": []}
    busy = kind.busy is not None and kind.busy(running_before)
    waiting: list[int] = []
    stale = kind.model._default_manager.filter(
        Q(status=kind.queued, heartbeat_at__lt=queued_before)
        | Q(status=kind.running, heartbeat_at__lt=running_before)
        | Q(status__in=[kind.queued, kind.running], heartbeat_at__isnull=True,
            created_at__lt=queued_before)
    )  # fmt: skip
    for pk in list(stale.values_list("pk", flat=True)):
        with transaction.atomic():
            job = kind.model._default_manager.select_for_update().filter(pk=pk).first()
            if job is None or job.status not in (kind.queued, kind.running):
                continue
            before = queued_before if job.status == kind.queued else running_before
            if (job.heartbeat_at or job.created_at) >= before:
                continue  # it moved on since the query
            if job.status == kind.queued:
                job.heartbeat_at = now
                job.save(update_fields=["heartbeat_at"])
                if busy:  # behind live work on its queue: its message is there, waiting
                    waiting.append(pk)
                    continue
                done["queued_again"].append(pk)
            elif job.attempts >= settings.SWEEP_MAX_ATTEMPTS:
                kind.fail(
                    job,
                    f"stopped without a word {job.attempts} times (its worker died or was "
                    "stopped); start it again when the workers are healthy",
                )
                done["failed"].append(pk)
                continue
            else:
                kind.requeue(job)
                done["recovered"].append(pk)
            kind.enqueue(pk)
    if any(done.values()):
        log.warning("%s sweep: %s", kind.name, done)
    if waiting:
        log.info("%s sweep: %s waiting behind live work, not sent again", kind.name, waiting)
    return done
