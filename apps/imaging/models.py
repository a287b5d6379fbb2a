"""Images of a lab: the de-identified DICOM, a preview and the float array, with labels."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from apps.labs.models import Lab

DEFAULT_CLASSES = ("Normal", "CHF", "Pneumonia")


class ImageClass(models.Model):
    """One class of a lab's label vocabulary (by default Normal, CHF and Pneumonia)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="image_classes")
    name = models.CharField(max_length=60)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lab_id", "position", "name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "lab", name="imaging_class_unique_name_ci"),
        ]

    def __str__(self) -> str:
        return self.name


class Image(models.Model):
    """A chest X-ray of a lab, stored de-identified at content-addressed paths."""

    class Format(models.TextChoices):
        DICOM = "dicom", "DICOM"
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="images")
    key = models.CharField(
        max_length=200, help_text="Lab-unique name; by default the uploaded file's stem."
    )
    label = models.CharField(max_length=60, blank=True, help_text="A class of the lab.")
    findings = models.JSONField(default=dict, blank=True, help_text="Finding flags: name -> bool.")
    source_format = models.CharField(max_length=8, choices=Format.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    pixel_spacing_row = models.FloatField(null=True, blank=True, help_text="mm")
    pixel_spacing_col = models.FloatField(null=True, blank=True, help_text="mm")
    view_position = models.CharField(max_length=16, blank=True)
    photometric_interpretation = models.CharField(max_length=16)
    bits_stored = models.PositiveSmallIntegerField()
    metadata = models.JSONField(
        default=dict, blank=True, help_text="Non-identifying technical metadata of the source."
    )
    pixel_sha256 = models.CharField(max_length=64)
    dicom_path = models.CharField(max_length=255, blank=True)
    preview_path = models.CharField(max_length=255)
    thumbnail_path = models.CharField(max_length=255)
    array_path = models.CharField(max_length=255)
    burned_in_annotation = models.BooleanField(
        default=False, help_text="The DICOM says text is burned into the pixels: review it."
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "key"], name="imaging_image_unique_key"),
            models.UniqueConstraint(
                fields=["lab", "pixel_sha256"], name="imaging_image_unique_pixels"
            ),
        ]
        indexes = [models.Index(fields=["lab", "label"], name="imaging_image_lab_label")]

    def __str__(self) -> str:
        return self.key

    @property
    def file_paths(self) -> list[str]:
        return [p for p in (self.dicom_path, self.preview_path, self.thumbnail_path,
                            self.array_path) if p]  # fmt: skip


class DeidentificationAudit(models.Model):
    """One de-identification: which attributes were removed or blanked (names, never values)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="deidentification_audits")
    image = models.ForeignKey(
        Image, on_delete=models.SET_NULL, null=True, blank=True, related_name="audits"
    )
    image_key = models.CharField(max_length=200)
    method = models.CharField(max_length=200)
    removed_attributes = models.JSONField(default=list)
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.image_key}: {len(self.removed_attributes)} attributes removed"


class LabImagingKey(models.Model):
    """The lab's secret for remapping DICOM UIDs (HMAC key); never shown, never leaves the DB."""

    lab = models.OneToOneField(Lab, on_delete=models.CASCADE, related_name="imaging_key")
    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"UID key of {self.lab}"
