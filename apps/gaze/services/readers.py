"""Readers, reading sessions (their display geometry checked) and readings' training flag; and a
session as ``ml.gaze`` wants it (:func:`session_setup`, :func:`session_geometry`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.gaze.models import Reader, Reading, ReadingSession
from apps.gaze.services.access import lab_role
from apps.labs.models import Lab, User
from ml.gaze import DisplayGeometry, ImageRect
from ml.gaze.analysis import ReadingSetup, detection_config
from ml.gaze.screen import Placement


# --- Readers ----------------------------------------------------------------------------------
def reader_create(
    *,
    lab: Lab,
    code: str,
    years_experience: int | None = None,
    specialty: str = "",
    user: User | None = None,
) -> Reader:
    """Add a coded reader to ``lab`` (optionally a member of it)."""
    if user is not None and lab_role(lab, user) is None:
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
    if user is not None and lab_role(reader.lab, user) is None:
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


# --- Sessions ---------------------------------------------------------------------------------
SESSION_FIELDS = (
    "name", "date", "tracker_make", "tracker_model", "sampling_rate_hz", "screen_width_px",
    "screen_height_px", "screen_width_mm", "screen_height_mm", "viewing_distance_mm",
    "image_placement", "fit_padding_px", "image_rect_left", "image_rect_top", "image_rect_width",
    "image_rect_height", "fixation_detection", "detection_velocity_deg_s",
    "detection_dispersion_deg", "detection_min_duration_ms", "notes",
)  # fmt: skip


def _check_session(session: ReadingSession) -> None:
    """Refuse a geometry the parse could not use (a rectangle without a size, one screen size in
    mm without the other, sizes that are not above zero, padding that leaves no room)."""
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
    """Create a session of ``reader`` in ``lab``. The caller checks that the creator may
    (:func:`~apps.gaze.services.access.reading_session_check_create`: a reader may create
    sessions only for themselves)."""
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
    """Delete a session with its recordings, readings, fixations and saliency maps; their files
    follow once the deletion commits, unless another row names them (``apps.core.files``)."""
    session.delete()


def session_geometry(
    session: ReadingSession, screen_px: tuple[int, int] | None = None
) -> DisplayGeometry:
    """The session's display as ``ml.gaze`` wants it (the file's own screen size wins)."""
    return DisplayGeometry(
        screen_px=screen_px or (session.screen_width_px, session.screen_height_px),
        screen_mm=_screen_mm(session),
        distance_mm=session.viewing_distance_mm,
    )


def _screen_mm(session: ReadingSession) -> tuple[float, float] | None:
    if session.screen_width_mm and session.screen_height_mm:
        return (session.screen_width_mm, session.screen_height_mm)
    return None


def session_setup(session: ReadingSession) -> ReadingSetup:
    """The session's screen, placement and fixation detection for ``ml.gaze.analysis``."""
    rect = None
    if session.image_placement == ReadingSession.Placement.RECT:
        rect = ImageRect(
            session.image_rect_left,
            session.image_rect_top,
            session.image_rect_width,
            session.image_rect_height,
        )
    method = str(session.fixation_detection)
    return ReadingSetup(
        screen_px=(session.screen_width_px, session.screen_height_px),
        screen_mm=_screen_mm(session),
        distance_mm=session.viewing_distance_mm,
        placement=Placement(
            mode=str(session.image_placement), rect=rect, padding_px=session.fit_padding_px
        ),
        detection=method,
        config=detection_config(
            method,
            velocity_deg_s=session.detection_velocity_deg_s,
            dispersion_deg=session.detection_dispersion_deg,
            min_duration_ms=session.detection_min_duration_ms,
        ),
        rate_hz=session.sampling_rate_hz or None,
    )


# --- Readings ---------------------------------------------------------------------------------
def reading_update(*, reading: Reading, use_for_training: bool) -> Reading:
    """Include a reading in training or leave it out (poor readings are out by default)."""
    from apps.gaze.services.saliency import pooled_maps_invalidate

    with transaction.atomic():
        changed = reading.use_for_training != use_for_training
        reading.use_for_training = use_for_training
        reading.save(update_fields=["use_for_training"])
        if changed:  # the image's pool over its training readings is another pool now
            pooled_maps_invalidate(lab_id=reading.lab_id, image_ids=[reading.image_id])
    return reading


def readings_training_set(*, session: ReadingSession, grade: str, use_for_training: bool) -> int:
    """Put every reading of ``session`` graded ``grade`` into training or leave it out, in one
    UPDATE; returns how many readings changed. The pooled maps of their images are made anew."""
    from apps.gaze.services.saliency import pooled_maps_invalidate

    if grade not in Reading.Grade.values:
        raise ValidationError({"grade": [f"Unknown grade {grade!r}."]})
    with transaction.atomic():
        changing = Reading.objects.filter(session=session, grade=grade).exclude(
            use_for_training=use_for_training
        )
        image_ids = list(changing.values_list("image_id", flat=True))
        changed = changing.update(use_for_training=use_for_training)
        if changed:
            pooled_maps_invalidate(lab_id=session.lab_id, image_ids=image_ids)
    return changed
