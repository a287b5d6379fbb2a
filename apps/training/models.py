"""Training jobs, their per-epoch metrics, and the model registry (versions and aliases).

A ``TrainingJob`` trains one model on one dataset snapshot with one configuration
(``ml.train.TrainConfig`` as plain values) on the ``gpu`` queue. While it runs it reports a
heartbeat and the batch it is at, one ``EpochMetrics`` row per finished epoch, and uploads its
last checkpoint after every epoch (content-addressed, ``checkpoint_name``), so that an attempt
on any machine resumes from it. A job that succeeds makes exactly one ``ModelVersion``
(one-to-one); researchers point ``ModelAlias`` names (``production``, ``candidate``, ...) at
versions, one version per alias per lab.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import DatasetSnapshot
from apps.labs.models import Lab


class TrainingJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="training_jobs")
    snapshot = models.ForeignKey(
        DatasetSnapshot, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="training_jobs",
    )  # fmt: skip
    name = models.CharField(max_length=200)
    preset = models.CharField(max_length=20, blank=True)
    config = models.JSONField(default=dict, help_text="ml.train.TrainConfig as plain values.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Starts (claims).")
    attempt_log = models.JSONField(
        default=list,
        help_text="One entry per start: number, started_at, ended_at, outcome, from_epoch, worker.",
    )
    epoch = models.PositiveIntegerField(default=0, help_text="Epochs finished.")
    batch = models.PositiveIntegerField(default=0, help_text="Batch of the running epoch.")
    num_batches = models.PositiveIntegerField(default=0)
    eta_s = models.FloatField(null=True, blank=True, help_text="Seconds left at most.")
    checkpoint_name = models.CharField(max_length=255, blank=True)
    checkpoint_epoch = models.PositiveIntegerField(default=0)
    checkpoint_size = models.BigIntegerField(default=0)
    best_name = models.CharField(max_length=255, blank=True)
    best_size = models.BigIntegerField(default=0)
    stop_reason = models.CharField(max_length=20, blank=True)
    alias_on_success = models.CharField(
        max_length=60, blank=True,
        help_text="An alias (such as 'production') set on the version this job makes.",
    )  # fmt: skip
    device = models.CharField(max_length=40, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "status"], name="training_job_lab_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def finished(self) -> bool:
        return self.status in (
            self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED
        )  # fmt: skip

    @property
    def max_epochs(self) -> int:
        return int((self.config or {}).get("max_epochs") or 0)


class EpochMetrics(models.Model):
    """One finished epoch of a job (at most one row per epoch, whatever the attempts)."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="epochs")
    epoch = models.PositiveIntegerField()
    attempt = models.PositiveSmallIntegerField(default=1)
    lr = models.FloatField()
    train_loss = models.FloatField()
    train_classification = models.FloatField(null=True, blank=True)
    train_saliency = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField()
    val_classification = models.FloatField(null=True, blank=True)
    val_kl = models.FloatField(null=True, blank=True, help_text="Validation saliency KL.")
    val_accuracy = models.FloatField(null=True, blank=True)
    val_cc = models.FloatField(null=True, blank=True)
    sigma_c = models.FloatField(null=True, blank=True)
    sigma_s = models.FloatField(null=True, blank=True)
    improved = models.BooleanField(default=False)
    lr_dropped = models.BooleanField(default=False)
    time_s = models.FloatField(default=0.0)
    images_per_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "epoch"]
        constraints = [
            models.UniqueConstraint(fields=["job", "epoch"], name="training_epoch_unique"),
        ]

    def __str__(self) -> str:
        return f"epoch {self.epoch} of job {self.job_id}"


class ModelVersion(models.Model):
    """A trained model in the lab's registry: made once, by the job that succeeded."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="model_versions")
    job = models.OneToOneField(
        TrainingJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="version"
    )
    snapshot = models.ForeignKey(
        DatasetSnapshot, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    name = models.CharField(max_length=200)
    checkpoint_name = models.CharField(max_length=255)
    checkpoint_sha256 = models.CharField(max_length=64)
    checkpoint_size = models.BigIntegerField(default=0)
    config = models.JSONField(default=dict)
    classes = models.JSONField(default=list)
    best_epoch = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, help_text="The best epoch's metrics.")
    curves = models.JSONField(default=dict, help_text="Per-epoch series: {name: [values]}.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ModelAlias(models.Model):
    """A name (``production``, ``candidate``, ...) for one version of a lab; setting it moves it."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="model_aliases")
    name = models.SlugField(max_length=60)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    set_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lab_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "name"], name="training_alias_unique"),
        ]

    def __str__(self) -> str:
        return self.name
