"""Many files at once: upload batches (staged in the request, ingested by a worker) and the
in-process ingest of many files that management commands and the benchmark use.

An upload request only stores what it received, as content-addressed staging files
(``imaging/lab-<id>/incoming/<token>/...``), and one ``UploadBatch`` row with a row per file;
the ingest runs on the Celery ``default`` queue (:func:`upload_batch_run`), one file at a time,
saving each file's result as it goes. A zip expands into one row per member. The staged files
are deleted when the batch ends.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.core import jobs, quota, storage
from apps.core.storage import FileBatch, StorageError
from apps.core.uploads import Upload
from apps.imaging.models import UploadBatch, UploadBatchFile
from apps.imaging.services.ingest import (
    ImageRejected,
    IngestResult,
    check_name_and_kind,
    check_size,
    image_ingest,
)
from apps.imaging.services.labels import image_class_defaults_ensure, vocabulary
from apps.imaging.services.zips import zip_extract, zip_open
from apps.labs.models import Lab, User
from apps.labs.roles import Action
from apps.labs.services import require_action
from ml import imaging

log = logging.getLogger(__name__)

FileStatus = UploadBatchFile.Status


class UploadRefused(Exception):
    """Every file of an upload was refused before anything was stored (empty or too large)."""

    def __init__(self, results: list[IngestResult]):
        self.results = results
        super().__init__("; ".join(r.message for r in results))


# --- One upload (a file or a zip), in this process ------------------------------------------


def _is_zip(upload: Upload) -> bool:
    """Whether the upload is a zip (by its content); ``ImageRejected`` for a zip too large or
    named as something else."""
    upload.file.seek(0)
    if upload.size <= 0 or imaging.sniff_format(upload.file) != "zip":
        return False
    check_size(upload.filename, upload.size)
    check_name_and_kind(upload.filename, "zip")
    return True


def _ingest_file(*, lab: Lab, uploaded_by: User | None, upload: Upload) -> IngestResult:
    try:
        return image_ingest(
            lab=lab, uploaded_by=uploaded_by, file=upload.file, filename=upload.filename,
            size=upload.size, key=upload.key, label=upload.label,
        )  # fmt: skip
    except ImageRejected as exc:
        return IngestResult.rejected(exc)


def _ingest_member(*, lab, uploaded_by, archive: str, zf, info, label: str) -> IngestResult:
    try:
        with zip_extract(archive, zf, info) as entry:
            return image_ingest(
                lab=lab, uploaded_by=uploaded_by, file=entry, size=info.file_size,
                filename=f"{archive}/{info.filename}", label=label,
            )  # fmt: skip
    except ImageRejected as exc:
        return IngestResult.rejected(exc)


def _ingest_upload(*, lab: Lab, uploaded_by: User | None, upload: Upload) -> list[IngestResult]:
    try:
        if not _is_zip(upload):
            return [_ingest_file(lab=lab, uploaded_by=uploaded_by, upload=upload)]
        with zip_open(upload.filename, upload.file) as (zf, members):
            return [
                _ingest_member(
                    lab=lab,
                    uploaded_by=uploaded_by,
                    archive=upload.filename,
                    zf=zf,
                    info=info,
                    label=upload.label,
                )  # fmt: skip
                for info in members
            ]
    except ImageRejected as exc:
        return [IngestResult.rejected(exc)]


def image_upload_batch(
    *, lab: Lab, uploaded_by: User, uploads: Iterable[Upload]
) -> list[IngestResult]:
    """Ingest many files (each DICOM, PNG, JPEG or a zip of them) into ``lab`` in this process:
    one result each. For management commands and benchmarks; requests use
    :func:`upload_batch_create`, which leaves the ingest to a worker.

    Each file is ingested in its own transaction: a bad file is reported and skipped, the
    others are stored. A zip with an unsafe entry name, too many entries, or entries that
    expand too much (a zip bomb) is refused whole before any of its entries is read.
    """
    require_action(user=uploaded_by, lab=lab, action=Action.WRITE)
    image_class_defaults_ensure(lab=lab)
    results: list[IngestResult] = []
    for upload in uploads:
        results.extend(_ingest_upload(lab=lab, uploaded_by=uploaded_by, upload=upload))
    return results


# --- Upload batches: staged in the request, ingested by a worker ----------------------------


def upload_batch_create(
    *, lab: Lab, created_by: User, uploads: Iterable[Upload], enqueue: bool = True
) -> UploadBatch:
    """Stage the uploaded files and queue their ingest; returns the queued batch at once.

    What needs no decoding is checked here: the role, the label, and each file's size (an empty
    or too large file is recorded as rejected and not staged). The files' content is checked by
    the ingest.

    Raises:
        PermissionDenied: the user may not write to ``lab``.
        ValidationError: no file, or a label that is not a class of the lab.
        UploadRefused: every file is empty or too large; nothing is stored.
        QuotaExceeded: the lab's derived files are at its quota already; nothing is stored.
    """
    require_action(user=created_by, lab=lab, action=Action.WRITE)
    quota.check(lab=lab, adding=1, what="another upload")
    image_class_defaults_ensure(lab=lab)
    uploads = list(uploads)
    if not uploads:
        raise ValidationError({"files": "No files were uploaded."})
    classes = vocabulary(lab)
    for upload in uploads:
        label = (upload.label or "").strip()
        if label and label.lower() not in classes:
            raise ValidationError(
                {"label": f"{label!r} is not a class of {lab.name} "
                          f"({', '.join(classes.values())})."}
            )  # fmt: skip
        upload.label = classes.get(label.lower(), "")
    refused: dict[int, IngestResult] = {}
    for i, upload in enumerate(uploads):
        try:
            check_size(upload.filename, upload.size)
        except ImageRejected as exc:
            refused[i] = IngestResult.rejected(exc)
    if len(refused) == len(uploads):
        raise UploadRefused(list(refused.values()))

    # Staged before the transaction (a long write would hold the database's write lock),
    # under a folder of this batch's own, so that no other batch shares a staged file.
    staging = FileBatch(app="imaging", lab_id=lab.pk)
    kind = f"incoming/{secrets.token_hex(8)}"
    now = timezone.now()
    try:
        rows = []
        for i, upload in enumerate(uploads):
            row = UploadBatchFile(
                position=i + 1, filename=upload.filename[:500], size=max(upload.size, 0),
                key=(upload.key or "").strip()[:200], label=upload.label,
            )  # fmt: skip
            if i in refused:
                row.status, row.message, row.finished_at = (
                    FileStatus.REJECTED,
                    refused[i].message,
                    now,
                )
            else:
                row.staged_name = staging.put(kind=kind, fh=upload.file)
            rows.append(row)
        with transaction.atomic():
            batch = UploadBatch.objects.create(
                lab=lab, created_by=created_by, files_total=len(rows),
                files_done=len(refused), rejected=len(refused), heartbeat_at=timezone.now(),
            )  # fmt: skip
            for row in rows:
                row.batch = batch
            UploadBatchFile.objects.bulk_create(rows)
            if enqueue:
                _enqueue(batch.pk)
    except BaseException:
        staging.discard()
        raise
    return batch


def _enqueue(batch_id: int) -> None:
    from apps.imaging.tasks import upload_batch_run_task

    transaction.on_commit(lambda: upload_batch_run_task.apply_async(args=[batch_id]))


def upload_batch_claim(*, batch_id: int) -> UploadBatch | None:
    """Move a queued batch to running under a row lock; None when it is not queued (a message
    delivered twice, or a batch deleted since), so that a task run twice ingests nothing twice."""
    with transaction.atomic():
        batch = UploadBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.status != UploadBatch.Status.QUEUED:
            return None
        now = timezone.now()
        batch.status, batch.started_at, batch.heartbeat_at = UploadBatch.Status.RUNNING, now, now
        batch.attempts += 1
        batch.save(update_fields=["status", "started_at", "heartbeat_at", "attempts"])
        return batch


def _counts_save(batch: UploadBatch) -> None:
    """Progress and result counts from the file rows (each saved as it finished)."""
    open_ = (FileStatus.QUEUED, FileStatus.RUNNING)
    counts = batch.files.aggregate(
        done=Count("id", filter=Q(parent=None) & ~Q(status__in=open_)),
        created=Count("id", filter=Q(status=FileStatus.CREATED)),
        duplicates=Count("id", filter=Q(status=FileStatus.DUPLICATE)),
        rejected=Count("id", filter=Q(status=FileStatus.REJECTED)),
    )
    for name, value in counts.items():
        setattr(batch, "files_done" if name == "done" else name, value)
    UploadBatch.objects.filter(pk=batch.pk).update(
        files_done=batch.files_done, created=batch.created, duplicates=batch.duplicates,
        rejected=batch.rejected,
    )  # fmt: skip


def _beat(batch_id: int) -> None:
    UploadBatch.objects.filter(pk=batch_id).update(heartbeat_at=timezone.now())


def _row_start(row: UploadBatchFile) -> None:
    row.status = FileStatus.RUNNING
    row.save(update_fields=["status"])
    _beat(row.batch_id)


def _row_finish(row: UploadBatchFile, result: IngestResult) -> None:
    row.status, row.message, row.image = result.status, result.message, result.image
    row.finished_at = timezone.now()
    row.save(update_fields=["status", "message", "image", "finished_at"])
    _beat(row.batch_id)


def _unexpected(filename: str, exc: Exception) -> IngestResult:
    log.exception("the ingest of %s failed", filename)
    return IngestResult(
        filename, "rejected",
        f"{filename}: could not be ingested ({type(exc).__name__}: {exc}); the others went on.",
    )  # fmt: skip


def _run_zip(batch: UploadBatch, row: UploadBatchFile, upload: Upload) -> None:
    with zip_open(row.filename, upload.file) as (zf, infos):
        members = UploadBatchFile.objects.bulk_create(
            [
                UploadBatchFile(
                    batch=batch,
                    parent=row,
                    position=row.position,
                    member_index=k,
                    filename=f"{row.filename}/{info.filename}"[:500],
                    size=info.file_size,
                    label=row.label,
                )  # fmt: skip
                for k, info in enumerate(infos, start=1)
            ]
        )
        for member, info in zip(members, infos, strict=True):
            _row_start(member)
            try:
                result = _ingest_member(
                    lab=batch.lab, uploaded_by=batch.created_by, archive=row.filename, zf=zf,
                    info=info, label=row.label,
                )  # fmt: skip
            except (SoftTimeLimitExceeded, KeyboardInterrupt):
                raise
            except Exception as exc:
                result = _unexpected(member.filename, exc)
            _row_finish(member, result)
            _counts_save(batch)
    stats = {s: sum(m.status == s for m in members) for s in ("created", "duplicate", "rejected")}
    row.status, row.finished_at = FileStatus.EXPANDED, timezone.now()
    row.message = (
        f"{row.filename}: {len(members)} file(s): {stats['created']} stored, "
        f"{stats['duplicate']} already in the lab, {stats['rejected']} rejected."
    )
    row.save(update_fields=["status", "message", "finished_at"])


def _run_row(batch: UploadBatch, row: UploadBatchFile) -> None:
    _row_start(row)
    try:
        handle = storage.open_file(row.staged_name)
    except StorageError:
        message = f"{row.filename}: the staged upload is missing from storage; upload it again."
        _row_finish(row, IngestResult(row.filename, "rejected", message))
        return
    with handle:
        upload = Upload(
            file=handle, filename=row.filename, size=row.size, key=row.key or None,
            label=row.label,
        )  # fmt: skip
        try:
            if _is_zip(upload):
                _run_zip(batch, row, upload)
                return
            result = _ingest_file(lab=batch.lab, uploaded_by=batch.created_by, upload=upload)
        except ImageRejected as exc:
            result = IngestResult.rejected(exc)
        except (SoftTimeLimitExceeded, KeyboardInterrupt):
            raise
        except Exception as exc:
            result = _unexpected(row.filename, exc)
    _row_finish(row, result)


def _staged_delete(batch: UploadBatch) -> None:
    staged = batch.files.exclude(staged_name="")
    for name in set(staged.values_list("staged_name", flat=True)):
        storage.delete(name)
    staged.update(staged_name="")


def upload_batch_run(*, batch_id: int) -> UploadBatch | None:
    """Ingest a queued batch, file by file, saving each file's result as it finishes.

    Idempotent: a batch that is not queued is left alone (returns None). A file that cannot be
    ingested is reported on its row and the others go on; if the batch itself stops (its time
    limit, the database gone), the files not reached are marked rejected, saying so, and the
    batch fails. The staged uploads are deleted either way.
    """
    batch = upload_batch_claim(batch_id=batch_id)
    if batch is None:
        log.info("upload batch %s is not queued; nothing to do", batch_id)
        return None
    status, error = UploadBatch.Status.DONE, ""
    try:
        for row in batch.files.filter(parent=None, status=FileStatus.QUEUED).order_by("position"):
            _run_row(batch, row)
            _counts_save(batch)
    except BaseException as exc:
        log.exception("upload batch %s stopped", batch_id)
        status = UploadBatch.Status.FAILED
        error = (
            f"The ingest stopped ({type(exc).__name__}: {exc}); the files not reached were "
            "not stored."
        )
        for row in batch.files.filter(status__in=(FileStatus.QUEUED, FileStatus.RUNNING)):
            message = f"{row.filename}: not ingested: the upload stopped before this file."
            _row_finish(row, IngestResult(row.filename, "rejected", message))
        if not isinstance(exc, Exception):
            raise
    finally:
        _staged_delete(batch)
        _counts_save(batch)
        batch.status, batch.error, batch.finished_at = status, error, timezone.now()
        batch.save(update_fields=["status", "error", "finished_at"])
    return batch


# --- Recovery ----------------------------------------------------------------------------------


def _batch_requeue(batch: UploadBatch) -> None:
    """A batch whose worker died: the files it had not finished go back to the queue (a zip
    starts over: the images of it already stored are then reported as in the lab already)."""
    running = batch.files.filter(parent=None, status=FileStatus.RUNNING)
    UploadBatchFile.objects.filter(parent__in=running).delete()
    running.update(status=FileStatus.QUEUED)
    batch.status, batch.heartbeat_at = UploadBatch.Status.QUEUED, timezone.now()
    batch.save(update_fields=["status", "heartbeat_at"])


def _batch_fail(batch: UploadBatch, reason: str) -> None:
    for row in batch.files.filter(status__in=(FileStatus.QUEUED, FileStatus.RUNNING)):
        message = f"{row.filename}: not ingested: the upload {reason}."
        _row_finish(row, IngestResult(row.filename, "rejected", message))
    _staged_delete(batch)
    _counts_save(batch)
    batch.status, batch.finished_at = UploadBatch.Status.FAILED, timezone.now()
    batch.error = f"The upload {reason}."
    batch.save(update_fields=["status", "finished_at", "error"])


UPLOAD_BATCHES = jobs.JobKind(
    name="upload batches", model=UploadBatch, queued=UploadBatch.Status.QUEUED,
    running=UploadBatch.Status.RUNNING, requeue=_batch_requeue, fail=_batch_fail,
    enqueue=lambda pk: _enqueue(pk),  # looked up when called: tests replace the queueing
)  # fmt: skip


def upload_batches_sweep(*, now=None) -> dict[str, list[int]]:
    """Recover upload batches whose ingest shows no sign of life (``apps.core.jobs.sweep``)."""
    return jobs.sweep(UPLOAD_BATCHES, now=now)
