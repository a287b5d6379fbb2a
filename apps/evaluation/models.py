"""Evaluations: a model version scored on one split of a dataset snapshot.

An ``Evaluation`` runs on the ``gpu`` queue (by hand, or on the test split when a training job
succeeds). Per image (``EvaluationImage``): the class probabilities, the predicted saliency map
(stored as float16 divided by its maximum, the exact map every metric was computed from), the
saliency metrics against the readers' pooled map and against each reader's own map, and the
references on the same image: the centre-bias baseline (the mean gaze map of the snapshot's
training split) and the inter-observer agreement (each reader's map against the pool of the
others). The summary holds the mean, median, std and 95 % bootstrap interval of each metric for
the model, the centre bias, the inter-observer ceiling and each reader, and the classification
metrics.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import DatasetSnapshot, SnapshotItem
from apps.labs.models import Lab
from apps.training.models import ModelVersion

# The saliency metrics stored per image (ml.metrics.saliency_metrics); lower is better for KL.
METRICS = ("kl", "kl_mit", "cc", "sim", "nss", "auc_judd", "auc_borji", "sauc", "info_gain")


class Evaluation(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="evaluations")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    snapshot = models.ForeignKey(
        DatasetSnapshot, on_delete=models.CASCADE, related_name="evaluations"
    )
    split = models.CharField(max_length=5, choices=SnapshotItem.Split.choices, default="test")
    name = models.CharField(max_length=200)
    automatic = models.BooleanField(
        default=False, help_text="Started when the version's training job succeeded."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Images scored.")
    total = models.PositiveIntegerField(default=0, help_text="Images of the split.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Starts (claims).")
    device = models.CharField(max_length=40, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Time of the last attempt.")
    classes = models.JSONField(default=list)
    summary = models.JSONField(
        default=dict,
        help_text="Per row (model, model_readers, centre_bias, ceiling, readers): per metric "
        "n, mean, median, std, ci95_low, ci95_high; notes.",
    )
    classification = models.JSONField(
        default=dict, help_text="ml.metrics.classification_metrics of the split."
    )
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "status"], name="evaluation_lab_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def progress(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


class EvaluationImage(models.Model):
    """One image of an evaluation: prediction, stored map and metrics (one column per metric of
    the model against the pooled map, for sorting; the rest as JSON)."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="images")
    item = models.ForeignKey(
        SnapshotItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    key = models.CharField(max_length=200)
    label = models.PositiveSmallIntegerField(help_text="True class index.")
    pred = models.PositiveSmallIntegerField(null=True, blank=True)
    correct = models.BooleanField(null=True, blank=True)
    probs = models.JSONField(default=list)
    map_name = models.CharField(max_length=255, blank=True)
    map_size = models.PositiveIntegerField(default=0)
    readers = models.JSONField(default=list, help_text="Codes of the readers of the image.")
    reader_metrics = models.JSONField(
        default=dict, help_text="Reader code -> the model's metrics against that reader's map."
    )
    centre_metrics = models.JSONField(
        default=dict, help_text="The centre-bias baseline's metrics against the pooled map."
    )
    loo_metrics = models.JSONField(
        default=dict,
        help_text="Reader code -> that reader's map against the pool of the other readers.",
    )
    kl = models.FloatField(null=True, blank=True)
    kl_mit = models.FloatField(null=True, blank=True)
    cc = models.FloatField(null=True, blank=True)
    sim = models.FloatField(null=True, blank=True)
    nss = models.FloatField(null=True, blank=True)
    auc_judd = models.FloatField(null=True, blank=True)
    auc_borji = models.FloatField(null=True, blank=True)
    sauc = models.FloatField(null=True, blank=True)
    info_gain = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["evaluation_id", "key"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "key"], name="evaluation_image_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} of evaluation {self.evaluation_id}"

    def metrics(self) -> dict[str, float | None]:
        return {m: getattr(self, m) for m in METRICS}
