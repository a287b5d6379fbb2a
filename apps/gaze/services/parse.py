"""The parse of a recording: read its stored file, analyse it (``ml.gaze.analysis``: detect,
map, match, grade), and store all of its readings and fixations in one transaction, or fail
with a report and store nothing.

This module decides what to call with which geometry and stores the result; the arithmetic is
in ``ml.gaze``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from itertools import repeat

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count

from apps.core import respcache, storage
from apps.gaze.models import Fixation, Reading, Recording
from apps.gaze.services.grading import thresholds_for_lab
from apps.gaze.services.readers import session_setup
from apps.gaze.services.recordings import (
    READER_OPTIONS,
    recording_claim,
    recording_report_progress,
    recording_update_status,
)
from apps.imaging.models import Image
from ml.gaze import FORMATS, GazeFormatError, GazeRecording, QualityThresholds, read_recording
from ml.gaze.analysis import ImageReading, analyse_recording
from ml.gaze.formats import SCREEN_OPTION

log = logging.getLogger(__name__)

# The least time between two progress reports of a running parse (seconds).
PROGRESS_INTERVAL_S = 0.25
# Fixation fields filled from per-fixation columns of an export (REFLACX), by export column.
FIXATION_EXTRA = {
    "px_per_deg_x": "angular_resolution_x_pixels_per_degree",
    "px_per_deg_y": "angular_resolution_y_pixels_per_degree",
    "shown_xmin": "xmin_shown_from_image",
    "shown_ymin": "ymin_shown_from_image",
    "shown_xmax": "xmax_shown_from_image",
    "shown_ymax": "ymax_shown_from_image",
}
FIXATION_COLUMNS = (
    "lab_id", "reading_id", "index", "start_ms", "duration_ms", "x", "y", "on_image", "source",
    *FIXATION_EXTRA,
)  # fmt: skip


@dataclass
class ReadingRows(ImageReading):
    """What one (session, image) reading of a recording will store: the analysis's reading of
    the image (``extra`` by :data:`FIXATION_EXTRA` field), with the image itself."""

    image: Image | None = None


@dataclass
class ParseResult:
    readings: list[ReadingRows] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    quality: dict = field(default_factory=dict)


def thresholds_from_settings() -> QualityThresholds:
    """The server's quality thresholds (``GAZE_QUALITY_*`` settings); a lab's own override them
    (``grading.thresholds_for_lab``, what the parse grades with)."""
    return QualityThresholds(**settings.GAZE_QUALITY_THRESHOLDS)


def recording_read(*, recording: Recording, path: str, companion: str | None) -> GazeRecording:
    """Read a stored export with its options, its companion file and the session's screen.

    The format's registry entry (``ml.gaze.FORMATS``) says which options its reader takes: the
    uploader's options it does not take are left out, the companion goes in as its option, and
    the session's screen size as :data:`~ml.gaze.formats.SCREEN_OPTION` where the reader takes
    it.
    """
    spec = FORMATS[recording.format]
    opts = {k: v for k, v in recording.options.items() if k in READER_OPTIONS and k in spec.options}
    if companion and spec.companion:
        opts[spec.companion] = companion
    if spec.takes_screen_size:
        session = recording.session
        opts[SCREEN_OPTION] = (session.screen_width_px, session.screen_height_px)
    rec = read_recording(path, format=spec.name, **opts)
    # Messages name the stored path: name the uploaded file instead.
    rec.warnings = [w.replace(path, recording.original_name) for w in rec.warnings]
    return rec


def recording_analyse(
    *,
    recording: Recording,
    rec: GazeRecording,
    images: dict[str, Image] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ParseResult:
    """Detect, map, match and grade a read recording (``ml.gaze.analysis.analyse_recording``
    with the session's setup and the lab's quality thresholds); nothing is stored here.

    Args:
        recording: The recording (for its session and options).
        rec: What ``ml.gaze`` read from its file.
        images: The lab's images by key (default: all of the lab's).
        progress: Called with a percentage as the work advances.
    """
    if images is None:
        images = {i.key: i for i in Image.objects.filter(lab=recording.lab)}
    analysis = analyse_recording(
        rec,
        session_setup(recording.session),
        images={key: (image.width, image.height) for key, image in images.items()},
        thresholds=thresholds_for_lab(lab=recording.lab),
        image_key=recording.options.get("image_key"),
        extra_columns=FIXATION_EXTRA,
        name=recording.original_name,
        progress=progress,
    )
    readings = [
        ReadingRows(**{f.name: getattr(r, f.name) for f in fields(r)}, image=images[r.key])
        for r in analysis.readings
    ]
    return ParseResult(readings, analysis.warnings, analysis.unmatched, analysis.quality)


def recording_store(*, recording: Recording, result: ParseResult) -> Recording:
    """Replace the recording's readings and fixations with ``result``, in one transaction, and
    mark it done. Images already read in this session by another recording are skipped and
    reported."""
    batch = settings.GAZE_FIXATION_BATCH_SIZE
    warnings = list(result.warnings)
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        Reading.objects.filter(recording=rec).delete()
        taken = dict(
            Reading.objects.filter(session=rec.session_id).values_list("image_id", "recording_id")
        )
        kept: list[ReadingRows] = []
        for r in result.readings:
            if r.image.pk in taken:
                warnings.append(
                    f"{r.image.key}: this session has a reading of it from recording "
                    f"{taken[r.image.pk]} already; left out"
                )
                continue
            taken[r.image.pk] = rec.pk
            kept.append(r)
        readings = Reading.objects.bulk_create(
            [
                Reading(
                    lab_id=rec.lab_id,
                    session_id=rec.session_id,
                    recording=rec,
                    image=r.image,
                    stimulus_name=r.stimulus_name,
                    start_ms=r.start_ms,
                    end_ms=r.end_ms,
                    fixation_count=len(r.duration),
                    dwell_ms=float(np.nansum(r.duration[r.on_image])) if len(r.duration) else 0.0,
                    fixation_source=r.source,
                    quality=r.quality,
                    grade=r.quality.get("grade", "good"),
                    use_for_training=r.quality.get("grade", "good") != Reading.Grade.POOR,
                )
                for r in kept
            ],
            batch_size=batch,
        )
        if any(reading.pk is None for reading in readings):  # a backend that returns no ids
            ids = dict(Reading.objects.filter(recording=rec).values_list("image_id", "pk"))
            for reading in readings:
                reading.pk = ids[reading.image_id]
        _fixations_insert(
            lab_id=rec.lab_id,
            readings=[(reading.pk, r) for reading, r in zip(readings, kept, strict=True)],
            batch=batch,
        )
        stored = _stored_counts_checked(recording=rec, readings=readings, kept=kept)
        warnings += stored.pop("warnings")
        rec.warnings = warnings[:1000]
        rec.quality = {**result.quality, **stored}
        rec.unmatched_stimuli = result.unmatched[:5000]
        recording_update_status(recording=rec, status=Recording.Status.DONE, progress=100)
        rec.save(update_fields=["warnings", "quality", "unmatched_stimuli"])
    return rec


def _stored_counts_checked(
    *, recording: Recording, readings: list[Reading], kept: list[ReadingRows]
) -> dict:
    """Count the fixations each reading has in the database against what the analysis gave it,
    inside the storing transaction: every format's guard against rows lost on the way.

    Returns:
        ``{"fixations_stored": n, "warnings": [...]}``, a warning per reading whose count
        differs, naming the image and both counts.
    """
    counts = dict(
        Fixation.objects.filter(reading__recording=recording)
        .values("reading_id")
        .annotate(n=Count("pk"))
        .values_list("reading_id", "n")
    )
    warnings = []
    for reading, r in zip(readings, kept, strict=True):
        want, got = len(r.duration), counts.get(reading.pk, 0)
        if got != want:
            warnings.append(
                f"{r.image.key}: {got} fixation(s) stored where the analysis gave {want} "
                f"(a difference of {got - want:+d})"
            )
    return {"fixations_stored": int(sum(counts.values())), "warnings": warnings}


def _fixation_rows(lab_id: int, readings: list[tuple[int, ReadingRows]]) -> Iterable[tuple]:
    """Each fixation as a tuple of :data:`FIXATION_COLUMNS` (NaN start -> None, NaN x/y -> -1)."""
    for reading_id, r in readings:
        n = len(r.duration)
        start = r.start.astype(float)
        # NaN (a cell left empty, or no start) is stored as NULL, like a column the export does
        # not have.
        starts = np.where(np.isfinite(start), start, np.nan).tolist()
        starts = [None if v != v else v for v in starts]
        xs = np.where(np.isfinite(r.x), r.x, -1.0).astype(float).tolist()
        ys = np.where(np.isfinite(r.y), r.y, -1.0).astype(float).tolist()
        durations = r.duration.astype(float).tolist()
        on = r.on_image.astype(bool).tolist()
        extra = [
            [None if v != v else v for v in r.extra[f].tolist()] if f in r.extra else repeat(None)
            for f in FIXATION_EXTRA
        ]
        # One zip of the columns: the tuples are built in C, not field by field.
        yield from zip(
            repeat(lab_id, n), repeat(reading_id), range(n), starts, durations, xs, ys, on,
            repeat(r.source), *extra,
        )  # fmt: skip


def _fixations_insert(*, lab_id: int, readings: list[tuple[int, ReadingRows]], batch: int) -> None:
    """Insert the readings' fixations: PostgreSQL's COPY (one stream, no per-row SQL) where the
    database is PostgreSQL, ``bulk_create`` in batches elsewhere. Runs inside the caller's
    transaction, so a failure leaves no row."""
    from django.db import connection

    rows = _fixation_rows(lab_id, readings)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Fixation._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(c) for c in FIXATION_COLUMNS)
        # Binary COPY: floats travel as their 8 bytes (exact, no text formatting and parsing),
        # with the table's own column types.
        sql = f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped",
                [Fixation._meta.db_table],
            )
            oids = dict(cursor.fetchall())
            with cursor.cursor.copy(sql) as copy:
                copy.set_types([int(oids[c]) for c in FIXATION_COLUMNS])
                for row in rows:
                    copy.write_row(row)
        # psycopg's COPY bypasses Django's cursor wrappers: tell the API's answer cache itself.
        respcache.note_write({Fixation._meta.db_table})
        return
    chunk: list[Fixation] = []
    for row in rows:
        chunk.append(Fixation(**dict(zip(FIXATION_COLUMNS, row, strict=True))))
        if len(chunk) >= batch:
            Fixation.objects.bulk_create(chunk, batch_size=batch)
            chunk = []
    if chunk:
        Fixation.objects.bulk_create(chunk, batch_size=batch)


def recording_parse(*, recording_id: int) -> Recording | None:
    """Parse a queued recording: read, detect, map, match, grade, store; or fail with a report.

    Idempotent: a recording that is not queued is left alone (returns None).
    """
    rec = recording_claim(recording_id=recording_id)
    if rec is None:
        log.info("recording %s is not queued; nothing to do", recording_id)
        return None

    last = [-math.inf]

    def progress(p: int) -> None:
        # Each report is its own committed UPDATE (a WAL flush): a few per second are enough
        # for the page that polls it, not one per percent of a parse that takes seconds.
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            recording_report_progress(recording_id=rec.pk, progress=p)

    result: ParseResult | None = None
    local: list[str] = []  # the local copies read, named in messages by the uploaded name
    try:
        with storage.local_copy(rec.file_path) as path:
            local.append(path)
            if rec.companion_path:
                with storage.local_copy(rec.companion_path) as comp:
                    local.append(comp)
                    data = recording_read(recording=rec, path=path, companion=comp)
            else:
                data = recording_read(recording=rec, path=path, companion=None)
            progress(30)
            result = recording_analyse(recording=rec, rec=data, progress=progress)
            del data
        if not result.readings:
            names = ", ".join(result.unmatched[:20]) or "none"
            raise GazeFormatError(
                f"no stimulus of the export matches an image of the lab (names: {names})",
                path=rec.original_name,
            )
        return recording_store(recording=rec, result=result)
    except Exception as exc:
        if isinstance(exc, GazeFormatError | ValidationError | IntegrityError | OSError):
            message = str(exc)
            log.info("recording %s failed: %s", rec.pk, message)
        else:  # a bug, not the file: logged with its traceback, reported plainly
            log.exception("recording %s failed", rec.pk)
            message = f"the parse failed unexpectedly ({type(exc).__name__}: {exc})"
        for p in local:
            message = message.replace(p, rec.original_name)
        unmatched = result.unmatched if result is not None else []
        Recording.objects.filter(pk=rec.pk).update(unmatched_stimuli=unmatched[:5000])
        return recording_update_status(
            recording=rec, status=Recording.Status.FAILED, progress=100, errors=[message]
        )
