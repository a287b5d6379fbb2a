"""Reads of training jobs and model versions, scoped to a lab."""

from __future__ import annotations

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from apps.labs.models import Lab
from apps.training.models import EpochMetrics, ModelVersion, TrainingJob


def job_list(*, lab: Lab) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(lab=lab).select_related("snapshot", "created_by")


def with_queue_fields(queryset: QuerySet[TrainingJob]) -> QuerySet[TrainingJob]:
    """Jobs with ``queue_position_n`` (as ``services.queue_position`` gives it: 1 for the lab's
    next queued job, None unless queued) and ``version_pk`` annotated, so that a list of jobs is
    read in one query, not two more per job."""
    queued = TrainingJob.Status.QUEUED
    ahead = (
        TrainingJob.objects.filter(lab=OuterRef("lab"), status=queued, pk__lt=OuterRef("pk"))
        .order_by()
        .values("lab")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        queue_position_n=Case(
            When(status=queued, then=Coalesce(Subquery(ahead), Value(0)) + 1),
            output_field=IntegerField(null=True),
        ),
        version_pk=F("version__pk"),
    )


def job_epochs(*, job: TrainingJob) -> QuerySet[EpochMetrics]:
    return EpochMetrics.objects.filter(job=job).order_by("epoch")


def version_list(*, lab: Lab) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(lab=lab).select_related("snapshot", "job")
