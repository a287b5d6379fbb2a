"""Reads of the gaze app, always scoped to a lab (or to the labs a user belongs to)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet

from apps.gaze.models import Fixation, Reader, Reading, ReadingSession, Recording, SaliencyMap
from apps.imaging.models import Image
from apps.labs.models import Lab, User


def reader_list(*, lab: Lab) -> QuerySet[Reader]:
    return Reader.objects.filter(lab=lab).select_related("user")


def reader_list_with_counts(*, lab: Lab) -> QuerySet[Reader]:
    """Readers of ``lab`` with their numbers of sessions and readings and their readings' grades
    (``n_sessions``, ``n_readings``, ``n_good``, ``n_usable``, ``n_poor``): one query."""
    grade = "sessions__readings__grade"
    readings = Count("sessions__readings", distinct=True)
    return (
        reader_list(lab=lab)
        .annotate(
            n_sessions=Count("sessions", distinct=True),
            n_readings=readings,
            **{
                f"n_{g}": Count("sessions__readings", filter=Q(**{grade: g}), distinct=True)
                for g in Reading.Grade.values
            },
        )
        .order_by("code", "id")
    )


def reader_get(*, lab: Lab, pk: int) -> Reader | None:
    return reader_list(lab=lab).filter(pk=pk).first()


def lab_member_list(*, lab: Lab) -> QuerySet[User]:
    """The users who are members of ``lab`` (a reader may be linked to one of them)."""
    return User.objects.filter(memberships__lab=lab).order_by("username")


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


def reading_get(*, lab: Lab, pk: int) -> Reading | None:
    return Reading.objects.filter(lab=lab, pk=pk).select_related("session__reader").first()


def _what_goes(*, lab_id: int, readings: QuerySet[Reading]) -> dict[str, int]:
    """How many readings, fixations and saliency maps go when ``readings`` are deleted: their
    fixations, their own maps, and the pooled maps of their images (made anew from the readings
    left, see ``apps.gaze.apps``)."""
    reading_ids = readings.values("pk")
    pooled = Q(kind=SaliencyMap.Kind.POOLED, image__in=readings.values("image_id"))
    return {
        "readings": readings.count(),
        "fixations": Fixation.objects.filter(lab_id=lab_id, reading__in=reading_ids).count(),
        "saliency_maps": SaliencyMap.objects.filter(lab_id=lab_id)
        .filter(Q(reading__in=reading_ids) | pooled)
        .count(),
    }


def reading_session_deletion_counts(*, session: ReadingSession) -> dict[str, int]:
    """What goes with ``session``: its recordings, readings, fixations and saliency maps."""
    readings = Reading.objects.filter(lab_id=session.lab_id, session=session)
    return {
        "recordings": Recording.objects.filter(lab_id=session.lab_id, session=session).count(),
        **_what_goes(lab_id=session.lab_id, readings=readings),
    }


def recordings_deletion_counts(*, session: ReadingSession) -> dict[int, dict[str, int]]:
    """:func:`recording_deletion_counts` of every recording of ``session``, in five queries
    whatever their number."""
    lab_id = session.lab_id

    def by_recording(queryset, key: str) -> dict[int, int]:
        rows = queryset.values(key).annotate(n=Count("pk", distinct=True)).order_by()
        return {row[key]: row["n"] for row in rows}

    readings = by_recording(Reading.objects.filter(lab_id=lab_id, session=session), "recording_id")
    fixations = by_recording(
        Fixation.objects.filter(lab_id=lab_id, reading__session=session), "reading__recording_id"
    )
    own_maps = by_recording(
        SaliencyMap.objects.filter(lab_id=lab_id, reading__session=session),
        "reading__recording_id",
    )
    pooled = by_recording(
        SaliencyMap.objects.filter(
            lab_id=lab_id, kind=SaliencyMap.Kind.POOLED, image__readings__session=session
        ),
        "image__readings__recording_id",
    )
    ids = Recording.objects.filter(lab_id=lab_id, session=session).values_list("pk", flat=True)
    return {
        pk: {
            "readings": readings.get(pk, 0),
            "fixations": fixations.get(pk, 0),
            "saliency_maps": own_maps.get(pk, 0) + pooled.get(pk, 0),
        }
        for pk in ids
    }


def recording_deletion_counts(*, recording: Recording) -> dict[str, int]:
    """What goes with ``recording``: its readings, fixations and saliency maps."""
    readings = Reading.objects.filter(lab_id=recording.lab_id, recording=recording)
    return _what_goes(lab_id=recording.lab_id, readings=readings)


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
