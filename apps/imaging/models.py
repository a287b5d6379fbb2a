"""Images of a lab (the de-identified DICOM, a preview, a thumbnail, the pixels for the model),
their labels, and upload batches (files staged in a request, ingested by a worker)."""

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
    derived_bytes = models.BigIntegerField(
        default=0, help_text="Bytes of its preview, thumbnail and stored pixels (the lab's quota)."
    )
    array_path = models.CharField(
        max_length=255,
        help_text="The file the float32 array is read from: the de-identified DICOM itself for "
        "a DICOM, a 16-bit grayscale PNG for a PNG or JPEG (a float32 .npy before "
        "imaging_compact_arrays).",
    )
    patient_key = models.CharField(
        max_length=64, blank=True, db_index=True,
        help_text="Pseudonymous patient: a keyed hash (HMAC, the lab's key) of the DICOM "
        "PatientID, made at de-identification; empty for PNG/JPEG or without a PatientID.",
    )  # fmt: skip
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
        """Every stored file of the image, once each (``array_path`` may name the DICOM)."""
        paths = (self.dicom_path, self.preview_path, self.thumbnail_path, self.array_path)
        return list(dict.fromkeys(p for p in paths if p))


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


class UploadBatch(models.Model):
    """Files uploaded in one request, staged in storage and ingested by a worker, one at a time.

    Progress counts the uploaded files (a zip counts once, when all its members are done);
    ``created``, ``duplicates`` and ``rejected`` count the results (each member of a zip).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="upload_batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="Images stored.")
    duplicates = models.PositiveIntegerField(default=0, help_text="Images already in the lab.")
    rejected = models.PositiveIntegerField(default=0, help_text="Files refused, each named.")
    error = models.TextField(blank=True, help_text="Why the batch failed as a whole.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of its ingest (the sweeper's clock)."
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Ingests started.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "status"], name="imaging_batch_lab_status")]

    def __str__(self) -> str:
        return f"upload {self.pk} of {self.lab}: {self.files_done}/{self.files_total} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        return 100 if not self.files_total else round(100 * self.files_done / self.files_total)


class UploadBatchFile(models.Model):
    """One file of a batch: an uploaded file, or (with ``parent``) one member of an uploaded zip."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CREATED = "created", "Stored"
        DUPLICATE = "duplicate", "Already in the lab"
        REJECTED = "rejected", "Rejected"
        EXPANDED = "expanded", "Zip read"

    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="files")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="members",
        help_text="The uploaded zip this file was read from.",
    )  # fmt: skip
    position = models.PositiveIntegerField(help_text="Order of the uploaded file in the request.")
    member_index = models.PositiveIntegerField(default=0, help_text="Order inside its zip (1..).")
    filename = models.CharField(max_length=500)
    size = models.PositiveBigIntegerField(default=0)
    staged_name = models.CharField(
        max_length=255, blank=True, help_text="The staged upload in storage, until the batch ends."
    )
    key = models.CharField(max_length=200, blank=True, help_text="Key asked for (default: stem).")
    label = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    image = models.ForeignKey(
        Image, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The image stored, or the one this file duplicates.",
    )  # fmt: skip
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch_id", "position", "member_index", "id"]

    def __str__(self) -> str:
        return f"{self.filename}: {self.status}"


class ImageRegion(models.Model):
    """A named region of an image (an anatomical box, a finding's ellipse, a phantom's mask), in
    the original image's pixels: continuous coordinates, pixel ``i`` covering ``[i, i + 1)``.

    ``box``: the rectangle ``[x1, x2) x [y1, y2)``; ``ellipse``: the ellipse inscribed in that
    box; ``mask``: a boolean array at the image's size stored at ``mask_name`` (the coordinates
    are then its bounding box). Regions come in by source; importing a file replaces the
    regions of the same source and group of every image the file names, all or nothing
    (``apps.imaging.services.regions``). Regions sharing a name on an image are one region
    (their union).
    """

    class Kind(models.TextChoices):
        BOX = "box", "Box"
        ELLIPSE = "ellipse", "Ellipse"
        MASK = "mask", "Mask"

    class Source(models.TextChoices):
        EGD = "egd", "EGD-CXR bounding_boxes.csv"
        REFLACX = "reflacx", "REFLACX anomaly_location_ellipses.csv"
        BOXES = "boxes", "Boxes CSV (image,name,x1,y1,x2,y2)"
        PHANTOM = "phantom", "Synthetic phantom masks"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="image_regions")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="regions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=7, choices=Kind.choices)
    x1 = models.FloatField(help_text="Image pixels (left edge).")
    y1 = models.FloatField(help_text="Image pixels (top edge).")
    x2 = models.FloatField(help_text="Image pixels (right edge, exclusive).")
    y2 = models.FloatField(help_text="Image pixels (bottom edge, exclusive).")
    mask_name = models.CharField(
        max_length=255, blank=True, help_text="A mask region's stored mask (.npz)."
    )
    source = models.CharField(max_length=7, choices=Source.choices)
    group = models.CharField(
        max_length=200, blank=True,
        help_text="Which import of its source it came from (e.g. a REFLACX reading id); an "
        "import replaces the regions of its source and group only.",
    )  # fmt: skip
    attributes = models.JSONField(
        default=dict, blank=True, help_text="What the file said besides (REFLACX: certainty)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "source", "group", "id"]
        indexes = [
            models.Index(fields=["image", "source", "group"], name="imaging_region_image_src"),
            models.Index(fields=["lab", "source"], name="imaging_region_lab_source"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) of image {self.image_id}"
