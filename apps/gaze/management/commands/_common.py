"""What the dataset import commands share: finding the lab, a reader and a session."""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.gaze import services
from apps.gaze.models import Reader, ReadingSession, Recording
from apps.labs.models import Lab


def lab_named(value: str) -> Lab:
    lab = Lab.objects.filter(slug=value).first()
    if lab is None and value.isdigit():
        lab = Lab.objects.filter(pk=int(value)).first()
    if lab is None:
        raise CommandError(f"no lab with slug or id {value!r}")
    return lab


def reader_and_session(lab: Lab, code: str, name: str, **geometry) -> ReadingSession:
    reader = Reader.objects.filter(lab=lab, code=code).first() or services.reader_create(
        lab=lab, code=code
    )
    session = ReadingSession.objects.filter(lab=lab, reader=reader, name=name).first()
    return session or services.reading_session_create(
        lab=lab, reader=reader, created_by=None, name=name, **geometry
    )


def ingest(session: ReadingSession, paths, options=None, queue: bool = False) -> list[Recording]:
    """Upload files (streamed from disk) and parse them here, or queue them for a worker."""
    uploads = [services.tmp_upload(p) for p in paths]
    try:
        recs = services.recording_upload(
            session=session, uploaded_by=None, uploads=uploads, options=options, enqueue=queue
        )
    except services.RecordingRejected as exc:
        raise CommandError(str(exc)) from None
    finally:
        for u in uploads:
            u.file.close()
    if queue:
        return recs
    out = []
    for rec in recs:
        done = services.recording_parse(recording_id=rec.pk)
        out.append(done or Recording.objects.get(pk=rec.pk))
    return out
