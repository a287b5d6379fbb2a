"""Content-addressed, atomic file writes through Django's storage API.

A file's name is the SHA-256 of its bytes, so the same content is written once. On the
filesystem, bytes go to a temporary file under ``<MEDIA_ROOT>/.tmp`` (hashed as they are
written) and are renamed into place, so a reader never sees half a file; remote storages (S3)
write objects atomically by themselves.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

CHUNK = 4 * 1024 * 1024


def content_name(*, lab_id: int, kind: str, digest: str, ext: str) -> str:
    """``imaging/lab-<id>/<kind>/<ab>/<sha256>.<ext>``: per lab, so a delete never reaches
    another lab's files."""
    return f"imaging/lab-{lab_id}/{kind}/{digest[:2]}/{digest}.{ext}"


def file_sha256(fh: BinaryIO) -> str:
    fh.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(CHUNK), b""):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


def local_path(name: str, storage: Storage | None = None) -> Path | None:
    """The stored file's path on this machine, or None for a remote storage (S3)."""
    try:
        return Path((storage or default_storage).path(name))
    except NotImplementedError:  # Django's answer for storages without local paths
        return None


def put_content_addressed(
    name_for: Callable[[str], str], fh: BinaryIO, storage: Storage | None = None
) -> tuple[str, str, bool]:
    """Store ``fh``'s bytes under the name ``name_for(sha256)`` unless that name exists.

    A content-addressed name means an existing file holds the same bytes. On the filesystem the
    bytes are hashed while they are written (one pass over a 400 MB export, not two) to a
    temporary file under ``<MEDIA_ROOT>/.tmp``, flushed to disk and renamed into place, so that a
    reader never sees half a file and a committed row never names a lost one. A remote storage
    (S3) gets the hash first, then one ``save``, which it makes atomic by itself.

    Returns:
        (name, sha256, created): the stored name, the digest and whether this call wrote it.
    """
    storage = storage or default_storage
    fh.seek(0)
    staging = local_path(".tmp", storage)
    if staging is None:
        digest = file_sha256(fh)
        name = name_for(digest)
        if storage.exists(name):
            return name, digest, False
        fh.seek(0)
        return storage.save(name, File(fh, name=name)), digest, True
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=staging, prefix="put-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            digest = _copy_hashing(fh, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        name = name_for(digest)
        target = local_path(name, storage)
        if target.exists():
            Path(tmp_name).unlink()
            return name, digest, False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_name, settings.FILE_UPLOAD_PERMISSIONS or 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    finally:
        fh.seek(0)
    return name, digest, True


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    """Copy ``src`` to ``dst`` and return the bytes' SHA-256. Past the first chunk, each chunk is
    hashed on a helper thread while the next is read and written (hashlib lets go of the GIL):
    SHA-256 runs at about 1 GB/s here, as slow as the copy itself."""
    hasher = hashlib.sha256()
    chunk = src.read(CHUNK)
    if len(chunk) < CHUNK:  # a small file: no thread
        hasher.update(chunk)
        dst.write(chunk)
        return hasher.hexdigest()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        pending = None
        while chunk:
            if pending is not None:
                pending.result()
            pending = pool.submit(hasher.update, chunk)
            dst.write(chunk)
            chunk = src.read(CHUNK)
        if pending is not None:
            pending.result()
    return hasher.hexdigest()


class FileBatch:
    """The files one ingest wrote, so that they can be removed if its row is not saved."""

    def __init__(self, storage: Storage | None = None):
        self.storage = storage or default_storage
        self.created: list[str] = []

    def put(self, *, lab_id: int, kind: str, ext: str, fh: BinaryIO) -> str:
        """Store ``fh``'s bytes at their content-addressed name; returns the name."""
        name, _, created = put_content_addressed(
            lambda digest: content_name(lab_id=lab_id, kind=kind, digest=digest, ext=ext),
            fh,
            self.storage,
        )
        if created:
            self.created.append(name)
        return name

    def discard(self) -> None:
        """Delete every file this batch created (the row that would name them was not saved)."""
        for name in self.created:
            self.storage.delete(name)
        self.created.clear()


def spooled_temp() -> tempfile.SpooledTemporaryFile:
    """A temporary file that stays in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, then on disk."""
    return tempfile.SpooledTemporaryFile(
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
