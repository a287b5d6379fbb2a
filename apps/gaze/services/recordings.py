"""Recordings: the upload (format detected and refused at once, companions attached, files
stored content-addressed), re-parse and delete, and the one door for a recording's status."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from apps.core import jobs, storage
from apps.core.uploads import Upload
from apps.gaze.models import ReadingSession, Recording
from apps.labs.models import User
from ml.gaze import FORMATS, GazeFormatError, detect_format
from ml.gaze.formats.registry import upload_options

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024
# Options an uploader may pass to the format readers (everything else is refused), and the
# options the app itself reads.
READER_OPTIONS = upload_options()
APP_OPTIONS = frozenset({"image_key"})


class RecordingRejected(Exception):
    """An upload that cannot be used; the message names the file (and line or column)."""

    def __init__(self, message: str, *, filename: str = "") -> None:
        super().__init__(message)
        self.filename = filename


def tmp_upload(path: str | os.PathLike[str]) -> Upload:
    """An :class:`Upload` of a local file (management commands and tests)."""
    return Upload.from_path(path)


def _head(fh: BinaryIO) -> bytes:
    fh.seek(0)
    head = fh.read(HEAD_BYTES)
    fh.seek(0)
    return head


def _detect(upload: Upload) -> str:
    try:
        return detect_format(_head(upload.file))
    except GazeFormatError as exc:
        raise RecordingRejected(f"{upload.filename}: {exc}", filename=upload.filename) from None


def _refused(upload: Upload, fmt: str) -> RecordingRejected:
    """The refusal of a format that is not read (EDF, summaries, companions sent alone...)."""
    return RecordingRejected(f"{upload.filename}: {FORMATS[fmt].refusal}", filename=upload.filename)


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
        session: The session the exports belong to (the caller checks the uploader may:
            :func:`~apps.gaze.services.access.check_can_upload`).
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
    kinds = [(u, FORMATS[_detect(u)]) for u in uploads]
    exports = [(u, spec) for u, spec in kinds if spec.companion_for is None]
    companions = [(u, spec) for u, spec in kinds if spec.companion_for is not None]
    if not exports:
        u, spec = kinds[0]
        raise _refused(u, spec.name)
    for u, spec in exports:
        if spec.refused:  # EDF, summaries, scene-camera positions...
            raise _refused(u, spec.name)
        if not spec.required <= set(options):
            raise RecordingRejected(f"{u.filename}: {spec.required_hint}", filename=u.filename)
    for u, spec in companions:
        if not any(spec.companion_for == e.name for _, e in exports):
            raise RecordingRejected(
                f"{u.filename}: {spec.name.replace('_', ' ')} describes {spec.companion_for} "
                "exports, and none was uploaded with it",
                filename=u.filename,
            )
    lab = session.lab
    companion_of: dict[str, tuple[str, str]] = {}
    recordings: list[Recording] = []
    with transaction.atomic():
        for u, spec in companions:
            name = storage.put(app="gaze", lab_id=lab.pk, kind="recordings", fh=u.file).name
            companion_of[spec.companion_for] = (u.filename, name)
        for u, spec in exports:
            stored = storage.put(app="gaze", lab_id=lab.pk, kind="recordings", fh=u.file)
            name, digest = stored.name, stored.sha256
            existing = Recording.objects.filter(session=session, sha256=digest).first()
            if existing is not None:
                recordings.append(existing)
                continue
            comp_name, comp_path = companion_of.get(spec.name, ("", ""))
            rec = Recording.objects.create(
                lab=lab,
                session=session,
                original_name=u.filename[:255],
                file_path=name,
                size=u.size,
                sha256=digest,
                format=spec.name,
                companion_name=comp_name[:255],
                companion_path=comp_path,
                options=options,
                uploaded_by=uploaded_by,
                heartbeat_at=timezone.now(),
            )
            recordings.append(rec)
            if enqueue:
                _queue(rec.pk)
    return recordings


def _enqueue(recording_id: int) -> None:
    """Queue a recording's parse when the transaction commits."""
    from apps.gaze.tasks import recording_parse_task

    transaction.on_commit(lambda: recording_parse_task.apply_async(args=[recording_id]))


def _queue(recording_id: int) -> None:
    # Through the package's name, so that tests (and the browser tests' live server, which has
    # no worker) replace the queueing in one place: ``monkeypatch.setattr(services, "_enqueue")``.
    from apps.gaze import services

    services._enqueue(recording_id)


def recording_reparse(*, recording: Recording, actor: User | None = None) -> Recording:
    """Queue a recording's parse again (after the session's geometry changed, or images were
    added); its readings are replaced when the parse succeeds."""
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.status in (Recording.Status.QUEUED, Recording.Status.PARSING):
            raise ValidationError("This recording is being parsed already.")
        rec.attempts = 0
        recording_update_status(recording=rec, status=Recording.Status.QUEUED, progress=0)
        _queue(rec.pk)
    return rec


def reading_session_reparse(
    *, session: ReadingSession, actor: User | None = None
) -> tuple[list[Recording], list[Recording]]:
    """Queue the parse of every recording of ``session`` again (after its geometry or fixation
    detection changed). Returns the recordings queued, and those skipped because a parse of
    theirs is queued or running already (it reads the session as it is now)."""
    queued: list[Recording] = []
    busy: list[Recording] = []
    with transaction.atomic():
        for rec in Recording.objects.filter(session=session).order_by("created_at", "id"):
            try:
                queued.append(recording_reparse(recording=rec, actor=actor))
            except ValidationError:
                busy.append(rec)
    return queued, busy


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
    recording.heartbeat_at = now
    fields = ["status", "heartbeat_at", "attempts"]
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
        progress=max(0, min(99, int(progress))), heartbeat_at=timezone.now()
    )


class RecordingClaimFailed(Exception):
    """The database could not be asked whether a recording is queued (locked, unreachable): the
    recording stays queued, and the task is retried (or the sweeper queues it again)."""


def recording_claim(*, recording_id: int) -> Recording | None:
    """Move a queued recording to parsing under a row lock; None when it is not queued (a
    duplicate delivery, or a recording deleted since), so a task that runs twice does nothing.

    Raises:
        RecordingClaimFailed: the claim's transaction failed; nothing changed.
    """
    try:
        with transaction.atomic():
            rec = Recording.objects.select_for_update().filter(pk=recording_id).first()
            if rec is None or rec.status != Recording.Status.QUEUED:
                return None
            rec.attempts += 1
            return recording_update_status(
                recording=rec, status=Recording.Status.PARSING, progress=1
            )
    except DatabaseError as exc:
        raise RecordingClaimFailed(f"recording {recording_id}: {exc}") from exc


def _recording_requeue(rec: Recording) -> None:
    recording_update_status(recording=rec, status=Recording.Status.QUEUED, progress=0)


def _recording_fail(rec: Recording, reason: str) -> None:
    recording_update_status(
        recording=rec,
        status=Recording.Status.FAILED,
        errors=[f"{rec.original_name}: the parse {reason}"],
    )


RECORDINGS = jobs.JobKind(
    name="recordings", model=Recording, queued=Recording.Status.QUEUED,
    running=Recording.Status.PARSING, requeue=_recording_requeue, fail=_recording_fail,
    enqueue=lambda pk: _queue(pk),
)  # fmt: skip


def recordings_sweep(*, now=None) -> dict[str, list[int]]:
    """Recover recordings whose parse shows no sign of life (``apps.core.jobs.sweep``): queued
    with no worker taking them, or parsing with no progress report (their worker died)."""
    return jobs.sweep(RECORDINGS, now=now)
