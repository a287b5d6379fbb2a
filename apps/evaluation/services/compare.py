"""Two or more evaluations of the same snapshot split side by side: for each evaluation against
the first, paired tests on the per-image metrics (Wilcoxon signed-rank with the matched-pairs
rank-biserial effect size, Holm-corrected across the metrics, and the paired bootstrap interval
of the mean difference), pairing images by key."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.exceptions import ValidationError

from apps.evaluation.models import METRICS, Evaluation, EvaluationImage
from apps.evaluation.services.summary import json_safe
from ml.stats import compare

MAX_COMPARED = 6


def _rows(evaluation: Evaluation) -> dict[str, dict[str, float]]:
    rows = EvaluationImage.objects.filter(evaluation=evaluation).values("key", *METRICS)
    return {r["key"]: {m: (np.nan if r[m] is None else float(r[m])) for m in METRICS} for r in rows}


def evaluations_check_comparable(evaluations: list[Evaluation]) -> None:
    """Raises ValidationError (field ``evaluations``) with the reason they cannot be compared."""
    if len(evaluations) < 2:
        raise ValidationError({"evaluations": ["Name two or more evaluations to compare."]})
    if len(evaluations) > MAX_COMPARED:
        raise ValidationError({"evaluations": [f"Compare at most {MAX_COMPARED} at once."]})
    if len({e.pk for e in evaluations}) != len(evaluations):
        raise ValidationError({"evaluations": ["An evaluation is named twice."]})
    first = evaluations[0]
    for other in evaluations[1:]:
        if (other.snapshot_id, other.split) != (first.snapshot_id, first.split):
            raise ValidationError({"evaluations": [
                f"Evaluation {other.pk} is on the {other.split} split of snapshot "
                f"{other.snapshot_id}, evaluation {first.pk} on the {first.split} split of "
                f"snapshot {first.snapshot_id}: paired tests need the same images, so only "
                "evaluations on the same snapshot split compare."
            ]})  # fmt: skip
    for e in evaluations:
        if e.status != Evaluation.Status.SUCCEEDED:
            raise ValidationError({"evaluations": [f"Evaluation {e.pk} is {e.status}."]})


def evaluations_compare(*, evaluations: list[Evaluation], bootstrap: int = 2000) -> dict[str, Any]:
    """The comparison of ``evaluations`` (the first is the reference ``a`` of every pair).

    Raises:
        ValidationError: fewer than two, different snapshot splits, or one not succeeded.
    """
    evaluations_check_comparable(evaluations)
    first = evaluations[0]
    rows_a = _rows(first)
    metrics = [m for m in METRICS if any(not np.isnan(r[m]) for r in rows_a.values())]
    pairs = []
    for other in evaluations[1:]:
        rows_b = _rows(other)
        shared = sorted(set(rows_a) & set(rows_b))
        pairs.append({
            "a": first.pk, "b": other.pk, "n_pairs": len(shared),
            "metrics": json_safe(compare(rows_a, rows_b, metrics, bootstrap=bootstrap, seed=0)),
        })  # fmt: skip
    return {
        "snapshot": first.snapshot_id,
        "split": first.split,
        "evaluations": [
            {"id": e.pk, "name": e.name, "version": e.version_id, "summary": e.summary.get("model")}
            for e in evaluations
        ],
        "metrics": metrics,
        "pairs": pairs,
    }
