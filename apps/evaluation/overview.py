"""The lab overview on the home page: counts of what the lab holds, its recent training jobs,
and the ``production`` model's headline metrics beside the centre-bias baseline and the
inter-observer ceiling of its latest evaluation (a fixed number of queries, whatever the lab's
size)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from apps.datasets.models import DatasetSnapshot
from apps.evaluation.models import Evaluation
from apps.gaze.models import Reader, Reading, ReadingSession, Recording
from apps.imaging.models import Image
from apps.labs.models import Lab
from apps.training.models import ModelAlias, ModelVersion, TrainingJob

# Headline saliency metrics (lower is better for KL) and their labels.
HEADLINE = (("cc", "CC"), ("kl", "KL"), ("nss", "NSS"), ("auc_judd", "AUC-Judd"),
            ("sim", "SIM"))  # fmt: skip
ALIAS = "production"


def _mean(row: dict | None, metric: str) -> float | None:
    stats = (row or {}).get(metric) or {}
    return stats.get("mean")


#: Metrics where lower is better.
LOWER_IS_BETTER = frozenset({"kl"})
#: A gap from the centre bias to the ceiling smaller than the table's last digit shows is none.
GAP_MIN = 5e-4


def place(metric: str, model: float, centre: float | None, ceiling: float | None):
    """Where ``model`` stands from the centre bias (0) to the inter-observer ceiling (1), and
    how to say it: None where the readers agree no better than the centre bias on ``metric``
    (in its direction), since a share of that gap means nothing."""
    if centre is None or ceiling is None:
        return None, "–"
    gain = centre - ceiling if metric in LOWER_IS_BETTER else ceiling - centre
    if gain < GAP_MIN:
        return None, "no gap: the readers agree no better than the centre bias"
    between = (model - centre) / (ceiling - centre)
    if between < 0:
        return between, "below the centre bias"
    if between > 1:
        return between, "above the ceiling"
    return between, f"{between:.0%}"


def headline(evaluation: Evaluation) -> dict[str, Any]:
    """The model, the centre bias and the ceiling side by side for the headline metrics, with
    where the model stands between the two (0: the centre bias, 1: the ceiling)."""
    summary = evaluation.summary or {}
    rows = []
    for metric, label in HEADLINE:
        model = _mean(summary.get("model"), metric)
        if model is None:
            continue
        centre = _mean(summary.get("centre_bias"), metric)
        ceiling = _mean(summary.get("ceiling"), metric)
        between, where = place(metric, model, centre, ceiling)
        rows.append({"metric": metric, "label": label, "model": model, "centre_bias": centre,
                     "ceiling": ceiling, "between": between, "place": where})  # fmt: skip
    classification = evaluation.classification or {}
    return {
        "evaluation": evaluation,
        "rows": rows,
        "accuracy": classification.get("accuracy"),
        "auc_macro": classification.get("auc_macro"),
        "ceiling_note": (summary.get("notes") or {}).get("ceiling")
        or (summary.get("notes") or {}).get("readers"),
        "n_images": summary.get("n_images"),
    }


def _next_step(counts: dict[str, int]) -> str | None:
    """What a new lab does next, in order: images, a reader, a session, then readings."""
    if not counts["images"]:
        return "images"
    if not counts["readers"]:
        return "reader"
    if not counts["sessions"]:
        return "session"
    if not counts["readings"]:
        return "recording"
    if not counts["snapshots"]:
        return "snapshot"
    return None


def lab_overview(*, lab: Lab) -> dict[str, Any]:
    """What the home page shows of ``lab``."""
    counts = {
        "images": Image.objects.filter(lab=lab).count(),
        "readers": Reader.objects.filter(lab=lab).count(),
        "sessions": ReadingSession.objects.filter(lab=lab).count(),
        "readings": Reading.objects.filter(lab=lab).count(),
        "snapshots": DatasetSnapshot.objects.filter(lab=lab).count(),
        "jobs": TrainingJob.objects.filter(lab=lab).count(),
        "versions": ModelVersion.objects.filter(lab=lab).count(),
        "evaluations": Evaluation.objects.filter(lab=lab).count(),
    }
    by_label = dict(
        Image.objects.filter(lab=lab).values_list("label").annotate(n=Count("id")).order_by()
    )
    by_grade = dict(
        Reading.objects.filter(lab=lab).values_list("grade").annotate(n=Count("id")).order_by()
    )
    recordings = Recording.objects.filter(lab=lab).aggregate(
        failed=Count("id", filter=Q(status=Recording.Status.FAILED)),
        unmatched=Count("id", filter=~Q(unmatched_stimuli=[])),
    )
    attention = {
        "failed_recordings": recordings["failed"],
        "unmatched_recordings": recordings["unmatched"],
        "unread_images": Image.objects.filter(lab=lab, readings__isnull=True).count(),
        "unlabelled_images": by_label.get("", 0),
    }
    jobs = list(TrainingJob.objects.filter(lab=lab).order_by("-created_at", "-id")[:5])
    alias = ModelAlias.objects.filter(lab=lab, name=ALIAS).select_related("version").first()
    version = alias.version if alias else None
    latest = None
    if version is not None:
        done = Evaluation.objects.filter(version=version, status=Evaluation.Status.SUCCEEDED)
        latest = (
            done.filter(split="test").order_by("-finished_at", "-id").first()
            or done.order_by("-finished_at", "-id").first()
        )
    return {
        "counts": counts,
        "images_by_label": sorted(((k or "(no label)", v) for k, v in by_label.items())),
        "readings_by_grade": [(g, by_grade.get(g, 0)) for g in ("good", "usable", "poor")],
        "attention": attention,
        "next_step": _next_step(counts),
        "recent_jobs": jobs,
        "production": version,
        "production_evaluation": headline(latest) if latest else None,
    }
