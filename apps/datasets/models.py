"""Dataset snapshots: an immutable, content-hashed freeze of (image, label, target, split) at a
model resolution, which training and evaluation read (``ml.manifest/1``).

A ``DatasetSnapshot`` records what a lab chose (filters, target options, split, seed); its
``SnapshotItem`` rows are the images chosen, with their label and split, fixed when the
snapshot is created; the build (a Celery task) writes each item's arrays and the manifest
through the storage API, one ``SnapshotFile`` row per stored file (so files go with the row),
and names the snapshot by the manifest's SHA-256 (``content_hash``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.imaging.models import Image
from apps.labs.models import Lab


class DatasetSnapshot(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="dataset_snapshots")
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    choices = models.JSONField(
        default=dict, help_text="Filters, target options, split and seed, as normalised."
    )
    classes = models.JSONField(default=list, help_text="Class names, in label-index order.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Builds started.")
    error = models.TextField(blank=True)
    content_hash = models.CharField(
        max_length=64, blank=True, db_index=True,
        help_text="SHA-256 of the manifest: the same choices over the same data give the same.",
    )  # fmt: skip
    counts = models.JSONField(
        default=dict, help_text="Images per split and class: {split: {class: n}}."
    )
    selection = models.JSONField(
        default=dict, help_text="What the filters left out, and why (counts of images)."
    )
    manifest_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0, help_text="Bytes of the stored files.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "status"], name="datasets_snap_lab_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)

    @property
    def n_items(self) -> int:
        return sum(sum(per_class.values()) for per_class in (self.counts or {}).values())


class SnapshotItem(models.Model):
    """One image of a snapshot: its label and split (fixed at creation) and, once built, the
    storage names of its arrays."""

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VAL = "val", "Validation"
        TEST = "test", "Test"

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="items")
    # A snapshot outlives the images it froze: its arrays are its own.
    image = models.ForeignKey(
        Image, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    key = models.CharField(max_length=200)
    label = models.CharField(max_length=60)
    label_index = models.PositiveSmallIntegerField()
    split = models.CharField(max_length=5, choices=Split.choices)
    patient_key = models.CharField(max_length=64, blank=True)
    reading_ids = models.JSONField(default=list, help_text="The readings its targets pool.")
    image_name = models.CharField(max_length=255, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    fixations_name = models.CharField(max_length=255, blank=True)
    reader_targets = models.JSONField(
        default=dict, help_text="Test items: reader code -> storage name of that reader's target."
    )
    n_fixations = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["snapshot_id", "key"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "key"], name="datasets_item_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.split}) of {self.snapshot_id}"


class SnapshotFile(models.Model):
    """A stored file of a snapshot (array or manifest); deleted with its row unless another row
    (of any snapshot: names are content-addressed) still names it."""

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["snapshot_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "name"], name="datasets_file_unique"),
        ]

    def __str__(self) -> str:
        return self.name
