"""Writes of the gaze app: readers, sessions, recording uploads and their parse.

The science (format readers, fixation detection, screen-to-image mapping, quality grades) lives
in ``ml.gaze``; this module decides what to call with which geometry, and stores the result:
all of a recording's readings and fixations in one transaction, or nothing.
"""

from __future__ import annotations

import inspect
import io
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import storage
from apps.core.storage import FileBatch, local_path
from apps.core.uploads import Upload
from apps.gaze.models import (
    Fixation,
    Reader,
    Reading,
    ReadingSession,
    Recording,
    SaliencyMap,
)
from apps.imaging.models import Image
from apps.labs.models import Lab, User
from apps.labs.roles import Action, role_allows
from apps.labs.selectors import lab_roles_for_user
from ml.gaze import (
    FORMATS,
    DisplayGeometry,
    Fixations,
    GazeFormatError,
    GazeRecording,
    IDTConfig,
    ImageRect,
    IVTConfig,
    QualityThresholds,
    Samples,
    Stimulus,
    detect_fixations,
    detect_format,
    map_to_image,
    match_stimuli,
    quality_report,
    read_recording,
)
from ml.gaze.quality import RowsByStimulus
from ml.saliency_maps import (
    fixation_density,
    pool_maps,
    sigma_px_for_degrees,
    target_cache_key,
)

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024
# Exports that are the companion of another file (they give padding or ids), not gaze data.
COMPANIONS = {"egd_cxr_master_sheet": "egd_cxr", "reflacx_metadata": "reflacx"}
COMPANION_OPTION = {"egd_cxr": "master_sheet", "reflacx": "metadata", "neon": "sections"}
# Options an uploader may pass to the format readers (everything else is refused).
READER_OPTIONS = {
    "time_unit", "space", "columns", "duration_unit", "delimiter", "kind", "eye", "trial_var",
    "stimulus_column", "reading_id", "min_confidence",
}  # fmt: skip
APP_OPTIONS = {"image_key"}
SCREEN_SPACES = ("screen_px", "screen_norm")
# Pixels per degree assumed when a session gives no physical geometry (a 24" 1920 px monitor at
# 65 cm); detection thresholds in degrees are converted with it, and the parse report says so.
FALLBACK_PX_PER_DEG = 41.0
# The least time between two progress reports of a running parse (seconds).
PROGRESS_INTERVAL_S = 0.25


class RecordingRejected(Exception):
    """An upload that cannot be used; the message names the file (and line or column)."""

    def __init__(self, message: str, *, filename: str = "") -> None:
        super().__init__(message)
        self.filename = filename


# --- Readers and sessions ---------------------------------------------------------------------
def _role(lab: Lab, user: User) -> str | None:
    return lab_roles_for_user(user=user).get(lab.pk)


def can_upload_to(*, session: ReadingSession, user: User) -> bool:
    """Researchers and admins upload to any session of their lab; readers to their own."""
    role = _role(session.lab, user)
    if role_allows(role, Action.WRITE):
        return True
    return role_allows(role, Action.UPLOAD_OWN) and session.reader.user_id == user.pk


def reader_create(
    *,
    lab: Lab,
    code: str,
    years_experience: int | None = None,
    specialty: str = "",
    user: User | None = None,
) -> Reader:
    """Add a coded reader to ``lab`` (optionally a member of it)."""
    if user is not None and _role(lab, user) is None:
        raise ValidationError({"user": ["This user is not a member of the lab."]})
    if Reader.objects.filter(lab=lab, code__iexact=code).exists():
        raise ValidationError({"code": [f"The lab has a reader {code!r} already."]})
    return Reader.objects.create(
        lab=lab, code=code, years_experience=years_experience, specialty=specialty, user=user
    )


def reader_update(*, reader: Reader, **changes: Any) -> Reader:
    """Change a reader's code, experience, specialty or linked user."""
    if "code" in changes and (
        Reader.objects.filter(lab=reader.lab, code__iexact=changes["code"])
        .exclude(pk=reader.pk)
        .exists()
    ):
        raise ValidationError({"code": [f"The lab has a reader {changes['code']!r} already."]})
    user = changes.get("user")
    if user is not None and _role(reader.lab, user) is None:
        raise ValidationError({"user": ["This user is not a member of the lab."]})
    for name, value in changes.items():
        setattr(reader, name, value)
    reader.save()
    return reader


def reader_delete(*, reader: Reader) -> None:
    """Delete a reader who has no sessions (sessions keep their reader)."""
    if reader.sessions.exists():
        raise ValidationError("This reader has reading sessions: delete those first.")
    reader.delete()


SESSION_FIELDS = (
    "name", "date", "tracker_make", "tracker_model", "sampling_rate_hz", "screen_width_px",
    "screen_height_px", "screen_width_mm", "screen_height_mm", "viewing_distance_mm",
    "image_placement", "fit_padding_px", "image_rect_left", "image_rect_top", "image_rect_width",
    "image_rect_height", "fixation_detection", "detection_velocity_deg_s",
    "detection_dispersion_deg", "detection_min_duration_ms", "notes",
)  # fmt: skip


def _check_session(session: ReadingSession) -> None:
    if session.image_placement == ReadingSession.Placement.RECT:
        rect = (
            session.image_rect_left,
            session.image_rect_top,
            session.image_rect_width,
            session.image_rect_height,
        )
        if any(v is None for v in rect):
            raise ValidationError(
                {"image_rect_width": ["A 'rect' placement needs left, top, width and height."]}
            )
        if rect[2] <= 0 or rect[3] <= 0:
            raise ValidationError({"image_rect_width": ["The rectangle must have a size."]})
    mm = (session.screen_width_mm, session.screen_height_mm)
    if (mm[0] is None) != (mm[1] is None):
        raise ValidationError({"screen_height_mm": ["Give both screen sizes in mm, or neither."]})
    for name in (
        "screen_width_mm", "screen_height_mm", "viewing_distance_mm", "sampling_rate_hz",
        "detection_velocity_deg_s", "detection_dispersion_deg", "detection_min_duration_ms",
    ):  # fmt: skip
        value = getattr(session, name)
        if value is not None and not value > 0:
            raise ValidationError({name: ["Must be above zero."]})
    if 2 * session.fit_padding_px >= min(session.screen_width_px, session.screen_height_px):
        raise ValidationError({"fit_padding_px": ["The padding leaves no room for the image."]})


def reading_session_create(
    *, lab: Lab, reader: Reader, created_by: User | None, **fields: Any
) -> ReadingSession:
    """Create a session of ``reader`` in ``lab``. The caller checks that the creator may (a
    reader may create sessions only for themselves)."""
    if reader.lab_id != lab.pk:
        raise ValidationError({"reader": ["This reader is not of the lab."]})
    unknown = set(fields) - set(SESSION_FIELDS)
    if unknown:
        raise TypeError(f"unknown session fields: {sorted(unknown)}")
    session = ReadingSession(lab=lab, reader=reader, created_by=created_by, **fields)
    _check_session(session)
    session.save()
    return session


def reading_session_update(*, session: ReadingSession, **fields: Any) -> ReadingSession:
    """Change a session's details; its recordings keep their parse until re-parsed."""
    for name, value in fields.items():
        if name not in SESSION_FIELDS and name != "reader":
            raise TypeError(f"unknown session field {name!r}")
        setattr(session, name, value)
    if session.reader.lab_id != session.lab_id:
        raise ValidationError({"reader": ["This reader is not of the lab."]})
    _check_session(session)
    session.save()
    return session


def reading_session_delete(*, session: ReadingSession) -> None:
    """Delete a session with its recordings, readings and fixations (stored files stay: they are
    content-addressed and may be shared)."""
    session.delete()


# --- Upload -----------------------------------------------------------------------------------
def _head(fh: BinaryIO) -> bytes:
    fh.seek(0)
    head = fh.read(HEAD_BYTES)
    fh.seek(0)
    return head


def _refusal(fmt: str, upload: Upload) -> str:
    """The reader's own message for a format that is refused (EDF, summaries, companions)."""
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, suffix=".bin") as tmp:
        tmp.write(_head(upload.file))
        tmp.flush()
        try:
            FORMATS[fmt](tmp.name)
        except GazeFormatError as exc:
            return str(exc).replace(tmp.name, upload.filename)
    return f"{upload.filename}: this file cannot be read as gaze data"


def _detect(upload: Upload) -> str:
    try:
        return detect_format(_head(upload.file))
    except GazeFormatError as exc:
        raise RecordingRejected(f"{upload.filename}: {exc}", filename=upload.filename) from None


def _clean_options(options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    unknown = sorted(set(options) - READER_OPTIONS - APP_OPTIONS)
    if unknown:
        raise RecordingRejected(
            f"unknown option(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(READER_OPTIONS | APP_OPTIONS))}"
        )
    return options


def recording_upload(
    *,
    session: ReadingSession,
    uploaded_by: User | None,
    uploads: Iterable[Upload],
    options: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> list[Recording]:
    """Store one or many exports of a session and queue their parse.

    The format of each file is detected at once from its content, so a wrong file is refused
    before anything is stored. Companion files (EGD-CXR's master_sheet.csv, REFLACX metadata)
    sent with the exports they describe are attached to them rather than parsed.

    Args:
        session: The session the exports belong to (the caller checks the uploader may).
        uploaded_by: Who uploads.
        uploads: The files.
        options: Reader options for every file (``time_unit``/``space`` for a generic CSV,
            ``reading_id`` for REFLACX...) and ``image_key`` for exports that name no image.
        enqueue: Queue the parse on commit (False: the caller parses).

    Returns:
        The recordings, one per gaze export (an export already uploaded to this session is
        returned as it is, not stored twice).

    Raises:
        RecordingRejected: naming the file; nothing of the batch is stored.
    """
    options = _clean_options(options)
    uploads = list(uploads)
    if not uploads:
        raise RecordingRejected("no files were uploaded")
    for u in uploads:
        if u.size > settings.UPLOAD_MAX_BYTES:
            raise RecordingRejected(
                f"{u.filename}: is larger than {settings.UPLOAD_MAX_BYTES} bytes",
                filename=u.filename,
            )
    kinds = [(u, _detect(u)) for u in uploads]
    exports = [(u, f) for u, f in kinds if f not in COMPANIONS]
    companions = [(u, f) for u, f in kinds if f in COMPANIONS]
    if not exports:
        u, f = kinds[0]
        raise RecordingRejected(_refusal(f, u), filename=u.filename)
    for u, f in exports:
        if FORMATS[f].__name__ == "refuse":  # summaries, companions of other formats
            raise RecordingRejected(_refusal(f, u), filename=u.filename)
        if f == "eyelink_edf":
            raise RecordingRejected(_refusal(f, u), filename=u.filename)
        if f == "generic_csv" and not {"time_unit", "space"} <= set(options):
            raise RecordingRejected(
                f"{u.filename}: a generic CSV needs its time unit and coordinate space declared "
                "(options time_unit = ms, s, us or ns, and space = screen_px, image_px...)",
                filename=u.filename,
            )
    for u, f in companions:
        if not any(COMPANIONS[f] == ef for _, ef in exports):
            raise RecordingRejected(
                f"{u.filename}: {f.replace('_', ' ')} describes {COMPANIONS[f]} exports, and "
                "none was uploaded with it",
                filename=u.filename,
            )
    lab = session.lab
    companion_of: dict[str, tuple[str, str]] = {}
    recordings: list[Recording] = []
    with transaction.atomic():
        for u, f in companions:
            name = storage.put(app="gaze", lab_id=lab.pk, kind="recordings", fh=u.file).name
            companion_of[COMPANIONS[f]] = (u.filename, name)
        for u, f in exports:
            stored = storage.put(app="gaze", lab_id=lab.pk, kind="recordings", fh=u.file)
            name, digest = stored.name, stored.sha256
            existing = Recording.objects.filter(session=session, sha256=digest).first()
            if existing is not None:
                recordings.append(existing)
                continue
            comp_name, comp_path = companion_of.get(f, ("", ""))
            rec = Recording.objects.create(
                lab=lab,
                session=session,
                original_name=u.filename[:255],
                file_path=name,
                size=u.size,
                sha256=digest,
                format=f,
                companion_name=comp_name[:255],
                companion_path=comp_path,
                options=options,
                uploaded_by=uploaded_by,
            )
            recordings.append(rec)
            if enqueue:
                _enqueue(rec.pk)
    return recordings


def _enqueue(recording_id: int) -> None:
    from apps.gaze.tasks import recording_parse_task

    transaction.on_commit(lambda: recording_parse_task.apply_async(args=[recording_id]))


def recording_reparse(*, recording: Recording, actor: User | None = None) -> Recording:
    """Queue a recording's parse again (after the session's geometry changed, or images were
    added); its readings are replaced when the parse succeeds."""
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.status in (Recording.Status.QUEUED, Recording.Status.PARSING):
            raise ValidationError("This recording is being parsed already.")
        recording_update_status(recording=rec, status=Recording.Status.QUEUED, progress=0)
        _enqueue(rec.pk)
    return rec


def recording_delete(*, recording: Recording) -> None:
    """Delete a recording with its readings and fixations."""
    recording.delete()


def recording_update_status(
    *,
    recording: Recording,
    status: str,
    progress: int | None = None,
    errors: list[str] | None = None,
) -> Recording:
    """The one door for a recording's status: queued -> parsing -> done | failed."""
    now = timezone.now()
    recording.status = status
    fields = ["status"]
    if progress is not None:
        recording.progress = max(0, min(100, int(progress)))
        fields.append("progress")
    if errors is not None:
        recording.errors = errors
        fields.append("errors")
    if status == Recording.Status.PARSING:
        recording.started_at, recording.finished_at = now, None
        fields += ["started_at", "finished_at"]
    elif status in (Recording.Status.DONE, Recording.Status.FAILED):
        recording.finished_at = now
        fields.append("finished_at")
    elif status == Recording.Status.QUEUED:
        recording.errors, recording.started_at, recording.finished_at = [], None, None
        fields += ["errors", "started_at", "finished_at"]
    recording.save(update_fields=sorted(set(fields)))
    return recording


def recording_report_progress(*, recording_id: int, progress: int) -> None:
    """Progress of a running parse, for the page that polls it (no other field changes)."""
    Recording.objects.filter(pk=recording_id, status=Recording.Status.PARSING).update(
        progress=max(0, min(99, int(progress)))
    )


def recording_claim(*, recording_id: int) -> Recording | None:
    """Move a queued recording to parsing under a row lock; None when it is not queued (a
    duplicate delivery, or a recording deleted since), so a task that runs twice does nothing."""
    with transaction.atomic():
        rec = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if rec is None or rec.status != Recording.Status.QUEUED:
            return None
        return recording_update_status(recording=rec, status=Recording.Status.PARSING, progress=1)


# --- Parse ------------------------------------------------------------------------------------
# Fixation fields filled from per-fixation columns of an export (REFLACX), by export column.
FIXATION_EXTRA = {
    "px_per_deg_x": "angular_resolution_x_pixels_per_degree",
    "px_per_deg_y": "angular_resolution_y_pixels_per_degree",
    "shown_xmin": "xmin_shown_from_image",
    "shown_ymin": "ymin_shown_from_image",
    "shown_xmax": "xmax_shown_from_image",
    "shown_ymax": "ymax_shown_from_image",
}


@dataclass
class ReadingRows:
    """What one (session, image) reading of a recording will store."""

    image: Image
    stimulus_name: str
    start_ms: float | None
    end_ms: float | None
    source: str
    quality: dict
    start: np.ndarray
    duration: np.ndarray
    x: np.ndarray
    y: np.ndarray
    on_image: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ParseResult:
    readings: list[ReadingRows] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    quality: dict = field(default_factory=dict)


def thresholds_from_settings() -> QualityThresholds:
    """The lab-wide quality thresholds (``GAZE_QUALITY_*`` settings)."""
    return QualityThresholds(**settings.GAZE_QUALITY_THRESHOLDS)


def session_geometry(
    session: ReadingSession, screen_px: tuple[int, int] | None = None
) -> DisplayGeometry:
    """The session's display as ``ml.gaze`` wants it (the file's own screen size wins)."""
    mm = None
    if session.screen_width_mm and session.screen_height_mm:
        mm = (session.screen_width_mm, session.screen_height_mm)
    return DisplayGeometry(
        screen_px=screen_px or (session.screen_width_px, session.screen_height_px),
        screen_mm=mm,
        distance_mm=session.viewing_distance_mm,
    )


def image_rect(
    *,
    session: ReadingSession,
    stimulus: Stimulus | None,
    image_size: tuple[int, int],
    screen_px: tuple[int, int],
) -> ImageRect:
    """Where the image was on screen: the session's rectangle, the export's own placement (EyeLink
    IMGLOAD, EGD-CXR padding, Tobii media position) when the session says "auto", else fitted."""
    P = ReadingSession.Placement
    if session.image_placement == P.RECT:
        return ImageRect(
            session.image_rect_left,
            session.image_rect_top,
            session.image_rect_width,
            session.image_rect_height,
        )
    placement = stimulus.placement if stimulus is not None else None
    # EGD-CXR's pads are original-image pixels: ImageRect.from_padding says why.
    if (
        session.image_placement == P.AUTO
        and placement
        and (placement.get("anchor") in ("padding", "fill") or placement.get("x") is not None)
    ):
        return ImageRect.from_placement(placement, image_size, screen_px)
    pad = session.fit_padding_px
    inner = ImageRect.fit((screen_px[0] - 2 * pad, screen_px[1] - 2 * pad), image_size)
    return ImageRect(inner.left + pad, inner.top + pad, inner.width, inner.height)


def _to_image(
    x: np.ndarray,
    y: np.ndarray,
    *,
    space: str,
    rect: ImageRect,
    image_size: tuple[int, int],
    screen_px: tuple[int, int],
):
    return map_to_image(
        x, y, space=space, image_size=image_size, rect=rect if space in SCREEN_SPACES else None,
        screen_px=screen_px,
    )  # fmt: skip


def detection_config(session: ReadingSession) -> IVTConfig | IDTConfig:
    """The session's I-VT or I-DT parameters (``ml.gaze`` defaults where it sets none)."""
    if session.fixation_detection == ReadingSession.Detection.IDT:
        cfg = IDTConfig()
        return IDTConfig(
            dispersion_threshold=session.detection_dispersion_deg or cfg.dispersion_threshold,
            min_duration_ms=session.detection_min_duration_ms or cfg.min_duration_ms,
        )
    cfg = IVTConfig()
    return IVTConfig(
        velocity_threshold=session.detection_velocity_deg_s or cfg.velocity_threshold,
        min_duration_ms=session.detection_min_duration_ms or cfg.min_duration_ms,
    )


def _fixations(
    rec: GazeRecording,
    session: ReadingSession,
    geometry: DisplayGeometry,
    warnings: list[str],
    screen_px: tuple[int, int],
    image_sizes: dict[int, tuple[int, int]],
) -> Fixations:
    """Vendor fixations when present (unless the session asks for re-detection), else I-VT/I-DT
    on the samples, in degrees where the geometry allows.

    Samples in fractions of the image (``media_norm``, ``surface_norm``) are placed on the
    screen first, through the rectangle each stimulus's image had there (``image_sizes``: the
    matched images' sizes by stimulus index), so that thresholds in degrees mean degrees."""
    D = ReadingSession.Detection
    redetect = session.fixation_detection in (D.IVT, D.IDT)
    if rec.fixations is not None and (not redetect or rec.samples is None):
        if redetect:
            warnings.append("re-detection asked for, but the export has no samples: vendor used")
        return rec.fixations
    if rec.samples is None or len(rec.samples) < 2:
        raise GazeFormatError("the export has neither fixations nor enough samples", path=rec.path)
    method = "idt" if session.fixation_detection == D.IDT else "ivt"
    cfg = detection_config(session)
    s = rec.samples
    rate = session.sampling_rate_hz or None
    if s.space in SCREEN_SPACES and geometry.has_angles:
        return detect_fixations(s, method=method, geometry=geometry, config=cfg, rate_hz=rate)
    if s.space in IMAGE_FRACTION_SPACES:
        on_screen = _image_fractions_on_screen(rec, session, screen_px, image_sizes)
        if geometry.has_angles:
            fx = detect_fixations(
                on_screen, method=method, geometry=geometry, config=cfg, rate_hz=rate
            )
            return _in_sample_units(fx, s)
        s_px, sw, sh = on_screen, 1, 1
    else:
        s_px = s
        sw, sh = geometry.screen_px if s.space == "screen_norm" else (1, 1)
    # No degrees from the geometry: scale positions to approximate degrees first.
    extra = s.extra
    if "angular_resolution_x_pixels_per_degree" in extra:  # REFLACX: image px per degree per row
        ppd = (
            extra["angular_resolution_x_pixels_per_degree"],
            extra["angular_resolution_y_pixels_per_degree"],
        )
    else:
        ppd = (FALLBACK_PX_PER_DEG / sw, FALLBACK_PX_PER_DEG / sh)
        warnings.append(
            f"no screen size in mm or viewing distance: detection assumed "
            f"{FALLBACK_PX_PER_DEG:g} px per degree"
        )
    px, py = (np.asarray(v, float) for v in ppd)
    scaled = Samples(
        s.time_ms, s_px.x / px, s_px.y / py, s.valid, s.pupil, s.stimulus, s.line, "deg"
    )
    return _in_sample_units(detect_fixations(scaled, method=method, config=cfg, rate_hz=rate), s)


IMAGE_FRACTION_SPACES = ("media_norm", "surface_norm")


def _image_fractions_on_screen(
    rec: GazeRecording,
    session: ReadingSession,
    screen_px: tuple[int, int],
    image_sizes: dict[int, tuple[int, int]],
) -> Samples:
    """Samples in fractions of their image, placed in screen pixels through each stimulus's
    image rectangle (an unmatched stimulus, or none: a square as tall as the screen)."""
    s = rec.samples
    assumed = (screen_px[1], screen_px[1])
    left = np.zeros(len(s))
    top = np.zeros(len(s))
    width = np.full(len(s), float(assumed[0]))
    height = np.full(len(s), float(assumed[1]))
    rows = RowsByStimulus(s.stimulus, len(rec.stimuli))
    for i, stimulus in enumerate(rec.stimuli):
        sel = rows.rows(i)
        if not sel.size:
            continue
        r = image_rect(
            session=session,
            stimulus=stimulus,
            image_size=image_sizes.get(i, assumed),
            screen_px=screen_px,
        )
        left[sel], top[sel], width[sel], height[sel] = r.left, r.top, r.width, r.height
    return Samples(
        s.time_ms, left + s.x * width, top + s.y * height, s.valid, s.pupil, s.stimulus, s.line,
        "screen_px",
    )  # fmt: skip


def _in_sample_units(fx: Fixations, s: Samples) -> Fixations:
    """Detected fixations with their positions in the samples' own units: the mean of the
    fixation's valid samples."""
    t = s.time_ms
    xs, ys = np.empty(len(fx)), np.empty(len(fx))
    for k in range(len(fx)):
        a = np.searchsorted(t, fx.start_ms[k], side="left")
        b = np.searchsorted(t, fx.start_ms[k] + fx.duration_ms[k] - 1e-6, side="left")
        sel = slice(a, max(b, a + 1))
        ok = s.valid[sel]
        xs[k] = np.nanmean(s.x[sel][ok]) if ok.any() else np.nan
        ys[k] = np.nanmean(s.y[sel][ok]) if ok.any() else np.nan
    return Fixations(fx.start_ms, fx.duration_ms, xs, ys, fx.stimulus, s.space, "detected")


def _calibration_screens(
    rec: GazeRecording,
    geometry: DisplayGeometry,
    screen_px: tuple[int, int],
    rows: RowsByStimulus | None = None,
) -> list[dict]:
    """Error on EGD-CXR's calibration screens (a dot at the screen centre): mean valid gaze
    minus the centre, in degrees where the geometry allows."""
    s = rec.samples
    out = []
    if s is None or s.space not in SCREEN_SPACES:
        return out
    for i, st in enumerate(rec.stimuli):
        if st.source != "calibration":
            continue
        if rows is not None:
            sel = rows.rows(i)
            sel = sel[s.valid[sel]]
        else:
            sel = np.flatnonzero((s.stimulus == i) & s.valid)
        if sel.size < 3:
            continue
        x, y = s.x[sel], s.y[sel]
        if s.space == "screen_norm":
            x, y = x * screen_px[0], y * screen_px[1]
        mx, my = float(np.median(x)), float(np.median(y))
        cx, cy = (screen_px[0] - 1) / 2, (screen_px[1] - 1) / 2
        row = {"name": st.name, "error_px": round(math.hypot(mx - cx, my - cy), 2)}
        if geometry.has_angles:
            dx, dy = geometry.pix2deg(np.array([mx]), np.array([my]))
            row["error_deg"] = round(float(math.hypot(dx[0], dy[0])), 3)
        out.append(row)
    return out


def recording_read(*, recording: Recording, path: str, companion: str | None) -> GazeRecording:
    """Read a stored export with its options, its companion file and the session's screen."""
    opts = {k: v for k, v in recording.options.items() if k in READER_OPTIONS}
    fmt = recording.format
    if companion and fmt in COMPANION_OPTION:
        opts[COMPANION_OPTION[fmt]] = companion
    reader = FORMATS[fmt]
    session = recording.session
    params = inspect.signature(reader).parameters
    if "screen_size_px" in params and "screen_size_px" not in opts:
        opts["screen_size_px"] = (session.screen_width_px, session.screen_height_px)
    for k in list(opts):
        if k not in params:
            opts.pop(k)
    rec = read_recording(path, format=fmt, **opts)
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
    """Detect, map, match and grade a read recording; nothing is stored here.

    Args:
        recording: The recording (for its session and options).
        rec: What ``ml.gaze`` read from its file.
        images: The lab's images by key (default: all of the lab's).
        progress: Called with a percentage as the work advances.
    """
    session = recording.session
    progress = progress or (lambda p: None)
    out = ParseResult(warnings=list(rec.warnings))
    screen_px = rec.screen_size_px or (session.screen_width_px, session.screen_height_px)
    if rec.screen_size_px and tuple(rec.screen_size_px) != (
        session.screen_width_px,
        session.screen_height_px,
    ):
        out.warnings.append(
            f"the export states a {screen_px[0]}x{screen_px[1]} screen; the session says "
            f"{session.screen_width_px}x{session.screen_height_px}: the export's was used"
        )
    geometry = session_geometry(session, tuple(screen_px))
    image_key = recording.options.get("image_key")
    if image_key and not rec.stimuli:
        # Exports that name no image: everything is a reading of the image the uploader named.
        rec.stimuli = [Stimulus(image_key, image_key, math.nan, math.nan, "upload option")]
        if rec.samples is not None:
            rec.samples.stimulus[:] = 0
        if rec.fixations is not None:
            rec.fixations.stimulus[:] = 0
    if not rec.stimuli:
        raise GazeFormatError(
            "the export names no image (no stimulus, trial or media): upload it with the "
            "option image_key naming the image",
            path=recording.original_name,
        )
    if images is None:
        images = {i.key: i for i in Image.objects.filter(lab=recording.lab)}
    match = match_stimuli(rec.stimuli, list(images), skip_sources=("calibration",))
    sizes = {i: (images[key].width, images[key].height) for i, key in match.matched.items()}
    fx = _fixations(rec, session, geometry, out.warnings, tuple(screen_px), sizes)
    progress(45)
    out.unmatched = match.unmatched
    groups: dict[str, list[int]] = {}
    for i, key in match.matched.items():
        groups.setdefault(key, []).append(i)
    s = rec.samples
    all_on: list[np.ndarray] = []
    thresholds = thresholds_from_settings()
    n_groups = max(1, len(groups))
    # Rows per stimulus from one sort: per image work is then O(its rows), not O(all rows).
    fx_rows = RowsByStimulus(fx.stimulus, len(rec.stimuli))
    s_rows = RowsByStimulus(s.stimulus, len(rec.stimuli)) if s is not None else None
    for g, (key, idxs) in enumerate(groups.items()):
        image = images[key]
        size = (image.width, image.height)
        first = rec.stimuli[idxs[0]]
        rect = image_rect(session=session, stimulus=first, image_size=size, screen_px=screen_px)
        fsel = fx_rows.rows(idxs)
        pts = _to_image(
            fx.x[fsel], fx.y[fsel], space=fx.space, rect=rect, image_size=size,
            screen_px=screen_px,
        )  # fmt: skip
        on_samples = None
        if s is not None:
            ssel = s_rows.rows(idxs)
            sp = _to_image(
                s.x[ssel], s.y[ssel], space=s.space, rect=rect, image_size=size,
                screen_px=screen_px,
            )  # fmt: skip
            on_samples = sp.on_image
            all_on.append(sp.on_image[s.valid[ssel]])
        reports = [
            quality_report(
                rec,
                stimulus=i,
                on_image=on_samples if len(idxs) == 1 else None,
                fixations=fx,
                thresholds=thresholds,
                sample_rows=s_rows.rows(i) if s_rows is not None else None,
                fixation_rows=fx_rows.rows(i),
            )
            for i in idxs
        ]
        q = max(reports, key=lambda r: ("good", "usable", "poor").index(r.grade)).as_dict()
        q["fixation_count"] = int(fsel.size)
        durations = fx.duration_ms[fsel]
        q["mean_fixation_ms"] = float(np.mean(durations)) if durations.size else None
        q["image_rect"] = [round(v, 3) for v in (rect.left, rect.top, rect.width, rect.height)]
        starts = [st.start_ms for st in (rec.stimuli[i] for i in idxs)]
        ends = [st.end_ms for st in (rec.stimuli[i] for i in idxs)]
        start = np.nanmin(starts) if np.isfinite(starts).any() else None
        end = np.nanmax(ends) if np.isfinite(ends).any() else None
        if start is None and fsel.size:
            start = float(np.nanmin(fx.start_ms[fsel]))
        if end is None and fsel.size:
            end = float(np.nanmax(fx.end_ms[fsel]))
        out.readings.append(
            ReadingRows(
                image=image,
                stimulus_name=first.name[:500],
                start_ms=_finite(start),
                end_ms=_finite(end),
                source=fx.source,
                quality=q,
                start=fx.start_ms[fsel],
                duration=fx.duration_ms[fsel],
                x=pts.x,
                y=pts.y,
                on_image=pts.on_image,
                extra={
                    name: np.asarray(fx.extra[column], float)[fsel]
                    for name, column in FIXATION_EXTRA.items()
                    if column in fx.extra
                },
            )
        )
        step = 45 + int(35 * (g + 1) / n_groups)
        if step != 45 + int(35 * g / n_groups):  # one update per percent, not per image
            progress(step)
    stray = int((fx.stimulus < 0).sum())
    if stray:
        out.warnings.append(f"{stray} fixation(s) fall outside every stimulus and were left out")
    whole = quality_report(
        rec,
        on_image=np.concatenate(all_on) if all_on else None,
        fixations=fx,
        thresholds=thresholds,
    ).as_dict()
    whole["format"] = rec.format
    whole["tracker"] = rec.tracker
    whole["fixation_source"] = fx.source
    whole["stimuli"] = len(rec.stimuli)
    whole["readings"] = len(out.readings)
    whole["calibration_screens"] = _calibration_screens(rec, geometry, tuple(screen_px), s_rows)
    if whole["calibration_screens"] and whole["validation_error_deg"] is None:
        errs = [c["error_deg"] for c in whole["calibration_screens"] if "error_deg" in c]
        whole["validation_error_deg"] = round(float(np.median(errs)), 3) if errs else None
    out.quality = whole
    return out


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _none_if_nan(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in a]


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
        rec.warnings = warnings[:1000]
        rec.quality = result.quality
        rec.unmatched_stimuli = result.unmatched[:5000]
        recording_update_status(recording=rec, status=Recording.Status.DONE, progress=100)
        rec.save(update_fields=["warnings", "quality", "unmatched_stimuli"])
    return rec


FIXATION_COLUMNS = (
    "lab_id", "reading_id", "index", "start_ms", "duration_ms", "x", "y", "on_image", "source",
    *FIXATION_EXTRA,
)  # fmt: skip


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
    try:
        with storage.local_copy(rec.file_path) as path:
            if rec.companion_path:
                with storage.local_copy(rec.companion_path) as comp:
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
        for p in (rec.file_path, rec.companion_path):
            if p:
                message = message.replace(str(local_path(p) or p), rec.original_name)
        unmatched = result.unmatched if result is not None else []
        Recording.objects.filter(pk=rec.pk).update(unmatched_stimuli=unmatched[:5000])
        return recording_update_status(
            recording=rec, status=Recording.Status.FAILED, progress=100, errors=[message]
        )


def reading_update(*, reading: Reading, use_for_training: bool) -> Reading:
    """Include a reading in training or leave it out (poor readings are out by default)."""
    reading.use_for_training = use_for_training
    reading.save(update_fields=["use_for_training"])
    return reading


def check_can_upload(*, session: ReadingSession, user: User) -> None:
    """Raise PermissionDenied unless ``user`` may upload to ``session``."""
    if not can_upload_to(session=session, user=user):
        raise PermissionDenied("Your role in this lab does not allow uploads to this session.")


def tmp_upload(path: str | os.PathLike[str]) -> Upload:
    """An :class:`Upload` of a local file (management commands and tests)."""
    return Upload.from_path(path)


# --- Saliency targets -------------------------------------------------------------------------
SALIENCY_MAX_SIDE = 4096
# MT-UNet's input, (height, width): the size a map gets when none is asked for.
SALIENCY_DEFAULT_SIZE = (640, 512)


def _saliency_size(target_size: tuple[int, int]) -> tuple[int, int]:
    h, w = (int(v) for v in target_size)
    if not (1 <= h <= SALIENCY_MAX_SIDE and 1 <= w <= SALIENCY_MAX_SIDE):
        raise ValidationError(
            {"target_size": [f"Height and width must be 1 to {SALIENCY_MAX_SIDE} pixels."]}
        )
    return h, w


def _reading_rect(reading: Reading, image_size: tuple[int, int], screen_px) -> ImageRect:
    """Where the parse placed the image on screen (kept in the reading's quality report)."""
    rect = (reading.quality or {}).get("image_rect")
    if rect and len(rect) == 4 and rect[2] > 0 and rect[3] > 0:
        return ImageRect(*(float(v) for v in rect))
    return ImageRect.fit(screen_px, image_size)


def reading_saliency_inputs(*, reading: Reading) -> tuple[dict[str, Any], str]:
    """The arguments of ``fixation_density`` for a reading (without the target size), and the
    sigma mode.

    Sigma is 1 degree of visual angle in image pixels: from the session's geometry (screen mm
    and viewing distance) through where the image was drawn, else at the assumed
    ``FALLBACK_PX_PER_DEG`` screen pixels per degree (mode ``assumed``). Where every fixation
    carries its own pixels per degree (REFLACX), each Gaussian uses its own, per axis (mode
    ``per_fixation``), and where every fixation carries the part of the image shown, each is
    drawn only over that part, as REFLACX's official heatmaps are.
    """
    session = reading.session
    image = reading.image
    screen_px = (session.screen_width_px, session.screen_height_px)
    rect = _reading_rect(reading, (image.width, image.height), screen_px)
    geometry = session_geometry(session, screen_px)
    size_hw = (image.height, image.width)
    if geometry.has_angles:
        sigma, mode = sigma_px_for_degrees(geometry, rect, size_hw), SaliencyMap.SigmaMode.GEOMETRY
    else:
        per_screen_px = 0.5 * (image.width / rect.width + image.height / rect.height)
        sigma, mode = FALLBACK_PX_PER_DEG * per_screen_px, SaliencyMap.SigmaMode.ASSUMED
    columns = ("x", "y", "duration_ms", *FIXATION_EXTRA)
    rows = np.array(
        list(reading.fixations.order_by("index").values_list(*columns)), dtype=np.float64
    ).reshape(-1, len(columns))
    ppd, shown = rows[:, 3:5], rows[:, 5:9]
    sigma_px: float | np.ndarray = float(sigma)
    if len(rows) and np.isfinite(ppd).all() and (ppd > 0).all():
        # The export states each fixation's pixels per degree (REFLACX): 1 degree per axis.
        sigma_px, mode = ppd, SaliencyMap.SigmaMode.PER_FIXATION
    inputs = {
        "fixations_xy": rows[:, :2],
        "durations_ms": rows[:, 2],
        "image_size": size_hw,
        "sigma_px": sigma_px,
        "shown_rect": shown if len(rows) and np.isfinite(shown).all() else None,
        "include_off_image": False,
    }
    return inputs, mode


def _saliency_store(*, lab: Lab, key: str, values: np.ndarray, **fields: Any) -> SaliencyMap:
    """Write the map's .npy content-addressed, then its row; a concurrent twin's row wins."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
    batch = FileBatch(app="gaze", lab_id=lab.pk)
    name = batch.put(kind="saliency", ext="npy", fh=buf)
    try:
        with transaction.atomic():
            return SaliencyMap.objects.create(lab=lab, cache_key=key, file_path=name, **fields)
    except IntegrityError:
        existing = SaliencyMap.objects.filter(lab=lab, cache_key=key).first()
        if existing is None:
            batch.discard()
            raise
        return existing


def saliency_map_load(*, saliency_map: SaliencyMap) -> np.ndarray:
    """The map's values, float32 ``(target_height, target_width)``, summing to 1."""
    return np.load(io.BytesIO(storage.read_bytes(saliency_map.file_path)), allow_pickle=False)


def saliency_map_get_or_create(
    *,
    target_size: tuple[int, int],
    reading: Reading | None = None,
    image: Image | None = None,
    include_unused: bool = False,
) -> SaliencyMap:
    """A reading's saliency target, or an image's pooled over its readers, from the cache.

    Per reading: ``ml.saliency_maps.fixation_density`` (duration-weighted Gaussians, sigma = 1
    degree: :func:`reading_saliency_inputs`) computed directly at ``target_size`` (each axis of
    the image stretched to it). Pooled: ``ml.saliency_maps.pool_maps`` of the per-reading maps
    (each reading counts once), over the image's readings used for training unless
    ``include_unused``; readings with no fixation on the image are left out.

    The cache key is ``target_cache_key`` of every input (fixations, geometry, size, code
    version; for a pool, the keys of its reading maps), so a matching row is returned as it is
    and anything that changes the map makes a new one.

    Args:
        target_size: ``(height, width)`` of the map.
        reading: The reading (exactly one of ``reading`` and ``image``).
        image: The image whose readings are pooled.
        include_unused: Pool readings left out of training too.

    Raises:
        ValidationError: a bad size, or no fixation on the image to make a map of.
    """
    if (reading is None) == (image is None):
        raise TypeError("give exactly one of reading and image")
    size = _saliency_size(target_size)
    if reading is not None:
        inputs, mode = reading_saliency_inputs(reading=reading)
        key = target_cache_key("fixation_density", target_size=size, transform=None, **inputs)
        found = SaliencyMap.objects.filter(lab_id=reading.lab_id, cache_key=key).first()
        if found is not None:
            return found
        try:
            values = fixation_density(target_size=size, **inputs)
        except ValueError as exc:
            raise ValidationError(f"Reading {reading.pk} has no saliency map: {exc}") from None
        return _saliency_store(
            lab=reading.lab, key=key, values=values, kind=SaliencyMap.Kind.READING,
            reading=reading, image_id=reading.image_id, target_height=size[0],
            target_width=size[1], sigma_mode=mode, sigma_px=float(np.mean(inputs["sigma_px"])),
            n_readings=1,
            n_fixations=int(len(inputs["durations_ms"])),
        )  # fmt: skip
    readings = Reading.objects.filter(lab_id=image.lab_id, image=image).select_related(
        "session", "image", "lab"
    )
    if not include_unused:
        readings = readings.filter(use_for_training=True)
    parts: list[SaliencyMap] = []
    for r in readings.order_by("id"):
        try:
            parts.append(saliency_map_get_or_create(target_size=size, reading=r))
        except ValidationError:
            continue  # nothing of this reading on the image
    if not parts:
        raise ValidationError(
            f"Image {image.key!r} has no reading with fixations on it"
            + ("" if include_unused else " among those used for training")
            + " to pool."
        )
    key = target_cache_key(
        "pooled", maps=[p.cache_key for p in parts], target_size=size, weights=None
    )
    found = SaliencyMap.objects.filter(lab_id=image.lab_id, cache_key=key).first()
    if found is not None:
        return found
    values = pool_maps([saliency_map_load(saliency_map=p) for p in parts])
    modes = {p.sigma_mode for p in parts}
    return _saliency_store(
        lab=image.lab, key=key, values=values, kind=SaliencyMap.Kind.POOLED, reading=None,
        image=image, target_height=size[0], target_width=size[1],
        sigma_mode=modes.pop() if len(modes) == 1 else SaliencyMap.SigmaMode.MIXED,
        sigma_px=None, n_readings=len(parts), n_fixations=sum(p.n_fixations for p in parts),
    )  # fmt: skip


def saliency_map_png(*, saliency_map: SaliencyMap) -> bytes:
    """An 8-bit grayscale PNG of the map, scaled so its maximum is white."""
    from PIL import Image as PILImage

    values = saliency_map_load(saliency_map=saliency_map).astype(np.float64)
    peak = values.max()
    gray = np.zeros(values.shape, np.uint8) if not peak > 0 else (values / peak * 255).round()
    out = io.BytesIO()
    PILImage.fromarray(gray.astype(np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()
