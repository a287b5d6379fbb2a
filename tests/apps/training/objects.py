"""Training jobs and model versions for the tests, made directly (no training run)."""

from __future__ import annotations

import io

from apps.core import storage
from apps.labs.models import Lab
from apps.training import services
from apps.training.models import ModelAlias, ModelVersion, TrainingJob
from tests.apps.datasets.objects import ready_snapshot

TINY = {"base_channels": 4, "batch_size": 4, "epochs": 3}


def queued_job(lab: Lab, user, **overrides) -> TrainingJob:
    """A queued job of ``lab`` on a small built snapshot (not sent to any queue)."""
    from apps.datasets.models import DatasetSnapshot

    snapshot = DatasetSnapshot.objects.filter(lab=lab, status="ready").first() or ready_snapshot(
        lab, user
    )
    return services.job_create(
        snapshot=snapshot, actor=user, overrides={**TINY, **overrides}, enqueue=False
    )


def model_version(lab: Lab, user, data: bytes | None = None) -> ModelVersion:
    """A registered version of a (pretend) succeeded job, with a stored checkpoint."""
    job = queued_job(lab, user)
    data = data or f"checkpoint of lab {lab.pk} job {job.pk}".encode()
    stored = storage.put(app="training", lab_id=lab.pk, kind="checkpoints", fh=io.BytesIO(data),
                         ext="pt")  # fmt: skip
    TrainingJob.objects.filter(pk=job.pk).update(
        status="succeeded", best_name=stored.name, best_size=len(data)
    )
    job.refresh_from_db()
    return services.version_create_for_job(job=job)


def model_alias(lab: Lab, user, name: str = "candidate") -> ModelAlias:
    return services.alias_set(version=model_version(lab, user), name=name, actor=user)
