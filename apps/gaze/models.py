"""Readers, reading sessions, uploaded recordings, and the readings and fixations parsed from them.

A ``Recording`` is one uploaded export (stored content-addressed); parsing it creates one
``Reading`` per (session, image) it names, each with its ``Fixation`` rows in image pixels.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.imaging.models import Image
from apps.labs.models import Lab


class Reader(models.Model):
    """A radiologist, by code; optionally a member of the lab (then they may upload their own
    sessions)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="readers")
    code = models.CharField(max_length=60, help_text="Lab-unique code, e.g. R1.")
    years_experience = models.PositiveSmallIntegerField(null=True, blank=True)
    specialty = models.CharField(max_length=120, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="gaze_readers", help_text="The lab member this reader is, if any.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lab_id", "code", "id"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "code"], name="gaze_reader_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code


class ReadingSession(models.Model):
    """One sitting of a reader at an eye tracker, with the display geometry needed to map gaze."""

    class Placement(models.TextChoices):
        AUTO = "auto", "As the export says (else fit)"
        FIT = "fit", "Fit to the screen with padding"
        RECT = "rect", "A fixed rectangle"

    class Detection(models.TextChoices):
        AUTO = "auto", "Vendor fixations when present, else I-VT"
        IVT = "ivt", "Always re-detect with I-VT"
        IDT = "idt", "Always re-detect with I-DT"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="reading_sessions")
    # RESTRICT, not PROTECT: a reader with sessions cannot be deleted alone, but a lab deleting
    # both its readers and their sessions can.
    reader = models.ForeignKey(Reader, on_delete=models.RESTRICT, related_name="sessions")
    name = models.CharField(max_length=200, blank=True)
    date = models.DateField(null=True, blank=True)
    tracker_make = models.CharField(max_length=120, blank=True)
    tracker_model = models.CharField(max_length=120, blank=True)
    sampling_rate_hz = models.FloatField(null=True, blank=True)
    screen_width_px = models.PositiveIntegerField(default=1920)
    screen_height_px = models.PositiveIntegerField(default=1080)
    screen_width_mm = models.FloatField(null=True, blank=True)
    screen_height_mm = models.FloatField(null=True, blank=True)
    viewing_distance_mm = models.FloatField(null=True, blank=True)
    image_placement = models.CharField(
        max_length=8, choices=Placement.choices, default=Placement.AUTO
    )
    fit_padding_px = models.PositiveIntegerField(
        default=0, help_text="Margin kept free on every side when the image is fitted."
    )
    image_rect_left = models.FloatField(null=True, blank=True)
    image_rect_top = models.FloatField(null=True, blank=True)
    image_rect_width = models.FloatField(null=True, blank=True)
    image_rect_height = models.FloatField(null=True, blank=True)
    fixation_detection = models.CharField(
        max_length=8, choices=Detection.choices, default=Detection.AUTO
    )
    detection_velocity_deg_s = models.FloatField(
        null=True, blank=True, help_text="I-VT threshold (default 30 deg/s)."
    )
    detection_dispersion_deg = models.FloatField(
        null=True, blank=True, help_text="I-DT threshold (default 1.0 deg)."
    )
    detection_min_duration_ms = models.FloatField(
        null=True, blank=True, help_text="Shortest fixation (default 60 ms I-VT, 100 ms I-DT)."
    )
    notes = models.CharField(max_length=2000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"Session {self.pk} of {self.reader}"


class Recording(models.Model):
    """One uploaded eye-tracker export of a session, and the state of its parse."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PARSING = "parsing", "Parsing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="recordings")
    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="recordings")
    original_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    format = models.CharField(max_length=40, help_text="Detected from the content.")
    companion_name = models.CharField(max_length=255, blank=True)
    companion_path = models.CharField(
        max_length=255, blank=True, help_text="EGD-CXR master_sheet.csv or REFLACX metadata."
    )
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100")
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    quality = models.JSONField(default=dict, blank=True)
    unmatched_stimuli = models.JSONField(default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of the recording's queued or running parse (queued, claimed, each
    # progress report): the sweeper recovers recordings whose heartbeat stopped.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Parses started since the upload (or the last reparse)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="gaze_rec_status_beat")]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "sha256"], name="gaze_recording_unique_file_per_session"
            ),
        ]

    def __str__(self) -> str:
        return self.original_name


class Reading(models.Model):
    """A reader's reading of one image within a session: its fixations and their quality."""

    class Grade(models.TextChoices):
        GOOD = "good", "Good"
        USABLE = "usable", "Usable"
        POOR = "poor", "Poor"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="readings")
    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="readings")
    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="readings")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="readings")
    stimulus_name = models.CharField(max_length=500)
    start_ms = models.FloatField(null=True, blank=True)
    end_ms = models.FloatField(null=True, blank=True)
    fixation_count = models.PositiveIntegerField(default=0)
    dwell_ms = models.FloatField(default=0.0, help_text="Total fixation time on the image.")
    fixation_source = models.CharField(max_length=10, default="vendor")
    quality = models.JSONField(default=dict, blank=True)
    grade = models.CharField(max_length=8, choices=Grade.choices, default=Grade.GOOD)
    use_for_training = models.BooleanField(
        default=True, help_text="Poor readings are left out by default."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session_id", "start_ms", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "image"], name="gaze_reading_unique_image"),
        ]

    def __str__(self) -> str:
        return f"{self.image} in session {self.session_id}"


class Fixation(models.Model):
    """One fixation in image pixels; off-image fixations are kept and flagged."""

    class Source(models.TextChoices):
        VENDOR = "vendor", "Vendor"
        DETECTED = "detected", "Detected"

    # Fixations are bulk rows: an EGD-CXR export stores 80,000 in one COPY, written only by
    # services._fixations_insert in the transaction that creates their readings, and deleted
    # only through the ORM, whose cascade (from the reading, the recording or the lab) removes
    # them. So neither key has a database constraint: PostgreSQL checks a foreign key row by
    # row at commit, about 0.35 s per 80,000 rows and key, as long as the COPY itself.
    # ``lab`` is a copy of reading.lab for lab-scoped queries.
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    # Indexed by gaze_fixation_reading_idx (reading, index), not by an index of its own.
    reading = models.ForeignKey(
        Reading,
        on_delete=models.CASCADE,
        related_name="fixations",
        db_index=False,
        db_constraint=False,
    )
    index = models.PositiveIntegerField()
    start_ms = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField()
    x = models.FloatField(help_text="Image pixels (continuous; pixel i covers [i, i + 1)).")
    y = models.FloatField()
    on_image = models.BooleanField()
    source = models.CharField(max_length=8, choices=Source.choices)
    # Where the export states them per fixation (REFLACX, whose readers zoomed and panned): image
    # pixels per degree of visual angle, and the part of the image that was on screen.
    px_per_deg_x = models.FloatField(null=True, blank=True)
    px_per_deg_y = models.FloatField(null=True, blank=True)
    shown_xmin = models.FloatField(null=True, blank=True)
    shown_ymin = models.FloatField(null=True, blank=True)
    shown_xmax = models.FloatField(null=True, blank=True)
    shown_ymax = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["reading_id", "index"]
        indexes = [models.Index(fields=["reading", "index"], name="gaze_fixation_reading_idx")]

    def __str__(self) -> str:
        return f"fixation {self.index} of reading {self.reading_id}"


class SaliencyMap(models.Model):
    """A cached saliency target (``ml.saliency_maps``): one reading's fixation density, or the
    pool of an image's readings, at one target size. ``cache_key`` is the content hash of every
    input (:func:`ml.saliency_maps.target_cache_key`): when fixations, geometry or code change,
    the key changes and a new map is made. The map itself is a float32 ``.npy`` (summing to 1)
    stored content-addressed."""

    class Kind(models.TextChoices):
        READING = "reading", "One reading"
        POOLED = "pooled", "Pooled over the image's readings"

    class SigmaMode(models.TextChoices):
        GEOMETRY = "geometry", "1 degree from the session geometry"
        ASSUMED = "assumed", "1 degree at an assumed 41 px per degree (no geometry)"
        PER_FIXATION = "per_fixation", "1 degree from each fixation's pixels per degree"
        MIXED = "mixed", "Pooled over readings of several modes"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="saliency_maps")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    reading = models.ForeignKey(
        Reading, on_delete=models.CASCADE, null=True, blank=True, related_name="saliency_maps"
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="saliency_maps")
    target_height = models.PositiveIntegerField()
    target_width = models.PositiveIntegerField()
    size_bytes = models.BigIntegerField(
        default=0, help_text="Bytes of the stored .npy (counted against the lab's quota)."
    )
    sigma_mode = models.CharField(max_length=16, choices=SigmaMode.choices)
    sigma_px = models.FloatField(
        null=True, blank=True, help_text="Sigma in image pixels (readings; null when pooled)."
    )
    n_readings = models.PositiveIntegerField(default=1)
    n_fixations = models.PositiveIntegerField(default=0)
    cache_key = models.CharField(max_length=64)
    file_path = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "cache_key"], name="gaze_saliency_unique_key"),
            models.CheckConstraint(
                condition=models.Q(kind="pooled", reading__isnull=True)
                | models.Q(kind="reading", reading__isnull=False),
                name="gaze_saliency_kind_reading",
            ),
        ]
        indexes = [
            models.Index(
                fields=["lab", "image", "kind", "target_height", "target_width"],
                name="gaze_saliency_lookup_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} saliency map {self.target_height}x{self.target_width} of {self.image}"
