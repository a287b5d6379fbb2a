"""An evaluation's life outside its run: creation (by hand, or on the test split when a
training job succeeds), the claim, and recovery by the sweeper."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core import jobs
from apps.datasets.models import DatasetSnapshot, SnapshotItem
from apps.evaluation.models import Evaluation, EvaluationImage
from apps.training.models import ModelVersion
from apps.training.services.jobs import gpu_busy

APP = "evaluation"


def _enqueue(evaluation_id: int) -> None:
    from apps.evaluation.tasks import evaluation_run_task

    transaction.on_commit(lambda: evaluation_run_task.apply_async(args=[evaluation_id]))


def _enqueue_by_package(evaluation_id: int) -> None:
    from apps.evaluation import services  # the package's name: tests replace the queueing there

    services._enqueue(evaluation_id)


def evaluation_create(
    *, version: ModelVersion, snapshot: DatasetSnapshot | None = None, split: str = "test",
    actor=None, name: str = "", automatic: bool = False, enqueue: bool = True,
) -> Evaluation:  # fmt: skip
    """A queued evaluation of ``version`` on ``split`` of ``snapshot`` (default: the snapshot
    the version was trained on); queued on ``gpu`` once the transaction commits.

    Raises:
        ValidationError: the snapshot is of another lab, not ready, has other classes than the
            version, or has no image in the split.
    """
    snapshot = snapshot or version.snapshot
    if snapshot is None:
        raise ValidationError({"snapshot": ["The version's snapshot was deleted: name one."]})
    if snapshot.lab_id != version.lab_id:
        raise ValidationError({"snapshot": ["Is not a snapshot of the version's lab."]})
    if snapshot.status != DatasetSnapshot.Status.READY:
        raise ValidationError(
            {"snapshot": [f"Snapshot {snapshot.name!r} is {snapshot.status}: use a ready one."]}
        )
    if list(snapshot.classes) != list(version.classes):
        raise ValidationError(
            {
                "snapshot": [
                    f"Its classes {snapshot.classes} are not the version's {version.classes}."
                ]
            }  # fmt: skip
        )
    if split not in SnapshotItem.Split.values:
        raise ValidationError({"split": [f"Is one of {', '.join(SnapshotItem.Split.values)}."]})
    total = SnapshotItem.objects.filter(snapshot=snapshot, split=split).count()
    if not total:
        raise ValidationError({"split": [f"Snapshot {snapshot.name!r} has no {split} image."]})
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            lab_id=version.lab_id, version=version, snapshot=snapshot, split=split,
            name=name or f"{version.name} on {snapshot.name} ({split})", automatic=automatic,
            created_by=actor if getattr(actor, "pk", None) else None, total=total,
            classes=list(snapshot.classes), heartbeat_at=timezone.now(),
        )  # fmt: skip
        if enqueue:
            _enqueue_by_package(evaluation.pk)
    return evaluation


def evaluation_for_new_version(*, version: ModelVersion) -> Evaluation | None:
    """The automatic evaluation of a version just registered: on its snapshot's test split,
    when that split has images (none otherwise)."""
    snapshot = version.snapshot
    if snapshot is None or snapshot.status != DatasetSnapshot.Status.READY:
        return None
    if not SnapshotItem.objects.filter(snapshot=snapshot, split="test").exists():
        return None
    return evaluation_create(version=version, snapshot=snapshot, split="test", automatic=True,
                             name=f"{version.name} (test split)")  # fmt: skip


def evaluation_claim(*, evaluation_id: int) -> Evaluation | None:
    """Move a queued evaluation to running under a row lock; None when it is not queued."""
    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update().filter(pk=evaluation_id).first()
        if evaluation is None or evaluation.status != Evaluation.Status.QUEUED:
            return None
        now = timezone.now()
        evaluation.status, evaluation.heartbeat_at = Evaluation.Status.RUNNING, now
        evaluation.started_at = evaluation.started_at or now
        evaluation.attempts += 1
        evaluation.done = 0
        evaluation.save(update_fields=["status", "heartbeat_at", "started_at", "attempts", "done"])
        return evaluation


def _requeue(evaluation: Evaluation) -> None:
    """An evaluation whose worker died starts over (its rows so far are deleted)."""
    EvaluationImage.objects.filter(evaluation=evaluation).delete()
    evaluation.status, evaluation.heartbeat_at = Evaluation.Status.QUEUED, timezone.now()
    evaluation.done = 0
    evaluation.save(update_fields=["status", "heartbeat_at", "done"])


def _fail(evaluation: Evaluation, reason: str) -> None:
    now = timezone.now()
    evaluation.status, evaluation.error = Evaluation.Status.FAILED, f"The evaluation {reason}."
    evaluation.heartbeat_at = evaluation.finished_at = now
    evaluation.save(update_fields=["status", "error", "heartbeat_at", "finished_at"])


EVALUATIONS = jobs.JobKind(
    name="evaluations", model=Evaluation, queued=Evaluation.Status.QUEUED,
    running=Evaluation.Status.RUNNING, requeue=_requeue, fail=_fail,
    enqueue=_enqueue_by_package, busy=gpu_busy,
)  # fmt: skip


def evaluation_sweep(*, now=None) -> dict[str, list[int]]:
    """Recover evaluations that show no sign of life (``apps.core.jobs.sweep``)."""
    return jobs.sweep(EVALUATIONS, now=now)


def evaluation_delete(*, evaluation: Evaluation) -> None:
    """Delete an evaluation and its stored maps (after the transaction commits)."""
    evaluation.delete()
