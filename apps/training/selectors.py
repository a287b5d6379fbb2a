"""Reads of training jobs and model versions, scoped to a lab."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.labs.models import Lab
from apps.training.models import EpochMetrics, ModelVersion, TrainingJob


def job_list(*, lab: Lab) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(lab=lab).select_related("snapshot", "created_by")


def job_epochs(*, job: TrainingJob) -> QuerySet[EpochMetrics]:
    return EpochMetrics.objects.filter(job=job).order_by("epoch")


def version_list(*, lab: Lab) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(lab=lab).select_related("snapshot", "job")
