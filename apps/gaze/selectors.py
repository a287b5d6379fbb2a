"""Reads of the gaze app, always scoped to a lab (or to the labs a user belongs to)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, QuerySet

from apps.gaze.models import Fixation, Reader, Reading, ReadingSession, Recording
from apps.imaging.models import Image
from apps.labs.models import Lab


def reader_list(*, lab: Lab) -> QuerySet[Reader]:
    return Reader.objects.filter(lab=lab).select_related("user")


def reading_session_list(*, lab: Lab) -> QuerySet[ReadingSession]:
    """Sessions of ``lab``, newest first, with their counts of recordings and readings."""
    return (
        ReadingSession.objects.filter(lab=lab)
        .select_related("reader")
        .annotate(n_recordings=Count("recordings", distinct=True))
        .annotate(n_readings=Count("readings", distinct=True))
        .order_by("-created_at", "-id")
    )


def reading_session_get(*, user_labs: Iterable[int], pk: int) -> ReadingSession | None:
    """A session of one of ``user_labs`` (None for anything else: other labs do not exist)."""
    return (
        ReadingSession.objects.filter(lab__in=list(user_labs), pk=pk)
        .select_related("reader", "lab")
        .first()
    )


def recording_list(*, lab: Lab, session: ReadingSession | None = None) -> QuerySet[Recording]:
    recordings = Recording.objects.filter(lab=lab).select_related("uploaded_by")
    recordings = recordings.order_by("-created_at", "-id")
    return recordings.filter(session=session) if session is not None else recordings


def recording_get(*, lab: Lab, pk: int) -> Recording | None:
    return Recording.objects.filter(lab=lab, pk=pk).select_related("session__reader").first()


def reading_list(
    *,
    lab: Lab,
    recording: Recording | None = None,
    image: Image | None = None,
    session: ReadingSession | None = None,
) -> QuerySet[Reading]:
    readings = Reading.objects.filter(lab=lab).select_related("image", "session__reader")
    if recording is not None:
        readings = readings.filter(recording=recording)
    if image is not None:
        readings = readings.filter(image=image)
    if session is not None:
        readings = readings.filter(session=session)
    return readings.order_by("start_ms", "id")


def fixation_list(*, lab: Lab, reading: Reading) -> QuerySet[Fixation]:
    return Fixation.objects.filter(lab=lab, reading=reading).order_by("index")


def scanpath(*, lab: Lab, reading: Reading) -> dict[str, list]:
    """A reading's fixations as parallel lists (for the page's Plotly figure)."""
    rows = list(
        fixation_list(lab=lab, reading=reading).values_list(
            "x", "y", "duration_ms", "on_image", "start_ms"
        )
    )
    keys = ("x", "y", "duration_ms", "on_image", "start_ms")
    return {k: [r[i] for r in rows] for i, k in enumerate(keys)}
