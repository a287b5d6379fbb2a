"""The model registry: the version a succeeded job makes (once), aliases, checkpoints, and the
lab's share of the derived-files quota."""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum

from apps.core import storage
from apps.training.models import EpochMetrics, ModelAlias, ModelVersion, TrainingJob

ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
ALIAS_RULE = ("An alias is 1-60 lowercase letters, digits, '-' or '_', such as 'production' or "
              "'candidate'.")  # fmt: skip
CURVES = ("lr", "train_loss", "val_loss", "val_classification", "val_kl", "val_accuracy",
          "val_cc", "sigma_c", "sigma_s", "time_s", "images_per_s")  # fmt: skip


def job_curves(*, job: TrainingJob) -> dict[str, list]:
    """Per-epoch series of a job: ``{"epoch": [...], "train_loss": [...], ...}``."""
    rows = list(EpochMetrics.objects.filter(job=job).order_by("epoch").values("epoch", *CURVES))
    return {key: [row[key] for row in rows] for key in ("epoch", *CURVES)}


def _metrics(row: EpochMetrics | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {key: getattr(row, key) for key in ("epoch", *CURVES)}


def version_create_for_job(*, job: TrainingJob) -> ModelVersion:
    """The job's model version: made once (``job`` is one-to-one; called under the job's row
    lock, in the success path), from its best checkpoint."""
    existing = ModelVersion.objects.filter(job=job).first()
    if existing is not None:
        return existing
    best = (
        EpochMetrics.objects.filter(job=job, improved=True).order_by("-epoch").first()
        or EpochMetrics.objects.filter(job=job).order_by("val_loss").first()
    )
    snapshot = job.snapshot
    version = ModelVersion.objects.create(
        lab_id=job.lab_id, job=job, snapshot=snapshot, name=job.name,
        checkpoint_name=job.best_name, checkpoint_sha256=storage.digest_of(job.best_name) or "",
        checkpoint_size=job.best_size, config=job.config,
        classes=list(snapshot.classes) if snapshot else [],
        best_epoch=best.epoch if best else 0, metrics=_metrics(best), curves=job_curves(job=job),
    )  # fmt: skip
    if job.alias_on_success:
        alias_set(version=version, name=job.alias_on_success, actor=job.created_by)
    if settings.EVALUATE_NEW_VERSIONS:
        from apps.evaluation.services import evaluation_for_new_version

        evaluation_for_new_version(version=version)  # queued once this transaction commits
    return version


def alias_set(*, version: ModelVersion, name: str, actor) -> ModelAlias:
    """Point the lab's alias ``name`` at ``version`` (moving it from another version).

    Raises:
        ValidationError: the name is not a lowercase slug of up to 60 characters.
    """
    if not ALIAS.match(name or ""):
        raise ValidationError({"name": [ALIAS_RULE]})
    with transaction.atomic():
        alias, _ = ModelAlias.objects.select_for_update().update_or_create(
            lab_id=version.lab_id, name=name,
            defaults={"version": version, "set_by": actor if getattr(actor, "pk", None) else None},
        )  # fmt: skip
        from apps.webhooks.services import webhooks_emit

        webhooks_emit(
            lab_id=version.lab_id, event="model.alias.set",
            payload={"alias": name, "model_version": version.pk, "job": version.job_id,
                     "set_by": getattr(actor, "username", None)},
        )  # fmt: skip
    return alias


def alias_unset(*, alias: ModelAlias) -> None:
    alias.delete()


def version_checkpoint(*, version: ModelVersion) -> BinaryIO:
    """The version's checkpoint file, open for reading."""
    return storage.open_file(version.checkpoint_name)


def training_usage_bytes(lab_id: int) -> int:
    """Bytes of checkpoints the lab keeps (job checkpoints and registered versions)."""
    jobs = TrainingJob.objects.filter(lab_id=lab_id).aggregate(
        last=Sum("checkpoint_size"), best=Sum("best_size")
    )
    versions = ModelVersion.objects.filter(lab_id=lab_id).aggregate(n=Sum("checkpoint_size"))
    return int(jobs["last"] or 0) + int(jobs["best"] or 0) + int(versions["n"] or 0)
