"""Evaluations of model versions: creation and recovery, the run on a ``gpu`` worker, the
summary, and comparisons with paired tests."""

from __future__ import annotations

from django.db.models import Sum

from apps.evaluation.services import render  # noqa: F401  (the gallery's panels)
from apps.evaluation.services.compare import evaluations_check_comparable, evaluations_compare
from apps.evaluation.services.jobs import (
    APP,
    EVALUATIONS,
    _enqueue,
    evaluation_claim,
    evaluation_create,
    evaluation_delete,
    evaluation_for_new_version,
    evaluation_sweep,
)
from apps.evaluation.services.regions import EvaluationNotReady, evaluation_regions
from apps.evaluation.services.run import as_density, evaluation_run, load_map, stored_map
from apps.evaluation.services.summary import evaluation_summarize


def evaluation_usage_bytes(lab_id: int) -> int:
    """Bytes of the lab's stored evaluation maps (its share of the derived-files quota)."""
    from apps.evaluation.models import EvaluationImage

    total = EvaluationImage.objects.filter(evaluation__lab_id=lab_id).aggregate(n=Sum("map_size"))[
        "n"
    ]
    return int(total or 0)


__all__ = [
    "APP",
    "EVALUATIONS",
    "EvaluationNotReady",
    "_enqueue",
    "as_density",
    "evaluation_claim",
    "evaluation_create",
    "evaluation_delete",
    "evaluation_for_new_version",
    "evaluation_regions",
    "evaluation_run",
    "evaluation_summarize",
    "evaluation_sweep",
    "evaluation_usage_bytes",
    "evaluations_check_comparable",
    "evaluations_compare",
    "load_map",
    "stored_map",
]
