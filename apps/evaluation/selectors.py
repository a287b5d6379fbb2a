"""Reads of evaluations for the API and the pages."""

from __future__ import annotations

from django.db.models import F, QuerySet

from apps.evaluation.models import METRICS, Evaluation, EvaluationImage

ORDERINGS = {"key", *METRICS}


def evaluation_images(
    *, evaluation: Evaluation, ordering: str = "key", label: str | None = None,
    correct: str | None = None,
) -> QuerySet[EvaluationImage]:  # fmt: skip
    """The evaluation's rows, ordered by a metric or the key ('-' first: descending; rows
    without the metric last), filtered by true class and by right or wrong prediction.

    Raises:
        ValueError: ``(field, message)`` for an unknown ordering or a bad filter value.
    """
    field = ordering.lstrip("-")
    if field not in ORDERINGS:
        raise ValueError("ordering", f"Is one of {', '.join(sorted(ORDERINGS))}, '-' first to "
                         "sort descending.")  # fmt: skip
    rows = EvaluationImage.objects.filter(evaluation=evaluation)
    if label not in (None, ""):
        if not str(label).isdigit() or int(label) >= max(len(evaluation.classes), 1):
            raise ValueError("label", f"Is a class index from 0 to {len(evaluation.classes) - 1}.")
        rows = rows.filter(label=int(label))
    if correct not in (None, ""):
        value = str(correct).lower()
        if value not in ("true", "false", "1", "0"):
            raise ValueError("correct", "Is true or false.")
        rows = rows.filter(correct=value in ("true", "1"))
    if field == "key":
        return rows.order_by(ordering)
    expression = (
        F(field).desc(nulls_last=True)
        if ordering.startswith("-")
        else F(field).asc(nulls_last=True)
    )
    return rows.order_by(expression, "key")


def evaluation_list(*, lab) -> QuerySet[Evaluation]:
    """The lab's evaluations, newest first, with their version, snapshot and author."""
    return Evaluation.objects.filter(lab=lab).select_related("version", "snapshot", "created_by")


def evaluation_distributions(*, evaluation: Evaluation) -> dict[str, dict[str, list]]:
    """Per metric, the per-image values of the model (against the pooled map), the centre bias
    and the inter-observer ceiling (each image's mean of its readers against the others; only
    images with two or more readers), in one query: ``{metric: {"model": [...],
    "centre_bias": [...], "ceiling": [...]}}`` (missing values left out)."""
    from ml.references import ceiling_row

    out: dict[str, dict[str, list]] = {
        m: {"model": [], "centre_bias": [], "ceiling": []} for m in METRICS
    }
    rows = EvaluationImage.objects.filter(evaluation=evaluation).order_by("key")
    for row in rows.values("centre_metrics", "loo_metrics", *METRICS).iterator(chunk_size=500):
        centre = row["centre_metrics"] or {}
        loo = row["loo_metrics"] or {}
        ceiling = ceiling_row(loo) if loo else {}
        for m in METRICS:
            for name, value in (("model", row[m]), ("centre_bias", centre.get(m)),
                                ("ceiling", ceiling.get(m))):  # fmt: skip
                if value is not None and value == value and abs(value) != float("inf"):
                    out[m][name].append(value)
    return out
