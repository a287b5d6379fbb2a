"""The demo's whole loop on its first start (``manage.py demo_loop``, run by ``scripts/demo``):
a snapshot of the demo lab, a ``quick`` training job whose version becomes ``production``, and
that version's evaluation (automatic when the job succeeds). Idempotent: a restart finds the
model and trains nothing; work its stopped worker left behind is queued again at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from apps.core import jobs
from apps.datasets import services as datasets
from apps.datasets.models import DatasetSnapshot
from apps.evaluation.models import Evaluation
from apps.evaluation.services.jobs import EVALUATIONS, evaluation_for_new_version
from apps.labs.models import Lab, User
from apps.training import services as training
from apps.training.models import ModelVersion, TrainingJob

SNAPSHOT = "Demo snapshot"
JOB = "Demo model"
ALIAS = "production"
#: Height x width of the demo's snapshot: small enough to train on 2 CPU cores in about a
#: minute, large enough for the phantoms' findings to show in the maps.
RESOLUTION = [128, 112]
#: The ``quick`` preset, trained long enough to pass the centre bias on the demo lab (40
#: epochs at most, stopping 13 epochs after the validation loss last improved).
OVERRIDES: dict[str, Any] = {"epochs": 40, "patience": 5}


@dataclass
class DemoLoop:
    snapshot: DatasetSnapshot
    job: TrainingJob
    version: ModelVersion | None
    evaluation: Evaluation | None
    #: "queued" (a job was queued now), "training" (one was already queued or running) or
    #: "trained" (a version exists: nothing is trained again).
    state: str
    #: Ids of the work a stopped worker left, queued again: {"training jobs": [...], ...}.
    recovered: dict[str, list[int]]


def recover_lost_work() -> dict[str, list[int]]:
    """Queue again every queued or running job of every kind (recordings, upload batches,
    snapshots, training jobs, evaluations), at once rather than after the sweepers' wait: for
    a start where no worker is alive yet. A running training job resumes from its last
    checkpoint."""
    from apps.datasets.services.build import SNAPSHOTS
    from apps.gaze.services.recordings import RECORDINGS
    from apps.imaging.services.batches import UPLOAD_BATCHES

    found = {}
    for kind in (RECORDINGS, UPLOAD_BATCHES, SNAPSHOTS, training.JOBS, EVALUATIONS):
        done = jobs.sweep(kind, after_s=0)
        ids = sorted(done["queued_again"] + done["recovered"])
        if ids:
            found[kind.name] = ids
    return found


def _snapshot(lab: Lab, actor: User, resolution: list[int]) -> DatasetSnapshot:
    """The demo lab's ready demo snapshot, built here (a second or two) when there is none."""
    ready = (
        DatasetSnapshot.objects.filter(lab=lab, name=SNAPSHOT, status=DatasetSnapshot.Status.READY)
        .order_by("-id")
        .first()
    )
    if ready is not None:
        return ready
    snapshot = datasets.snapshot_create(
        lab=lab, actor=actor, name=SNAPSHOT, enqueue=False, resolution=list(resolution)
    )
    built = datasets.snapshot_build(snapshot_id=snapshot.pk)
    if built is None or built.status != DatasetSnapshot.Status.READY:
        raise ValidationError(
            {"snapshot": [f"The demo snapshot failed: {getattr(built, 'error', '') or 'lost'}"]}
        )
    return built


def demo_loop_start(
    *, lab: Lab, actor: User, resolution: list[int] | None = None,
    overrides: dict[str, Any] | None = None, recover: bool = True,
) -> DemoLoop:  # fmt: skip
    """Make sure the demo lab's loop is done or under way: its snapshot, one training job
    (``quick`` with :data:`OVERRIDES`, its version aliased ``production``) and the version's
    evaluation on the test split. ``recover``: queue again what a stopped worker left (only
    where no worker runs).

    Raises:
        ValidationError: the lab's data cannot make a snapshot (saying why).
    """
    recovered = recover_lost_work() if recover else {}
    snapshot = _snapshot(lab, actor, resolution or RESOLUTION)
    ours = TrainingJob.objects.filter(lab=lab, snapshot=snapshot, name=JOB).order_by("-id")
    done = ours.filter(status=TrainingJob.Status.SUCCEEDED).first()
    if done is not None:
        version = ModelVersion.objects.filter(job=done).first()
        if version is None:  # registered by the success path; made here if that was lost
            version = training.version_create_for_job(job=done)
        evaluation = Evaluation.objects.filter(version=version).order_by("-id").first()
        if evaluation is None or evaluation.status == Evaluation.Status.FAILED:
            evaluation = evaluation_for_new_version(version=version)  # as after the job
        return DemoLoop(snapshot, done, version, evaluation, "trained", recovered)
    active = ours.filter(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING])
    job = active.first()
    if job is not None:
        return DemoLoop(snapshot, job, None, None, "training", recovered)
    job = training.job_create(
        snapshot=snapshot, actor=actor, preset="quick", name=JOB,
        overrides={**OVERRIDES, **(overrides or {})}, alias=ALIAS,
    )  # fmt: skip
    return DemoLoop(snapshot, job, None, None, "queued", recovered)
