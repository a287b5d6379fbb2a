"""Content-addressed, atomic files through Django's storage API, for every app.

A file's name carries the SHA-256 of its bytes, so the same content is written once:
``<app>/lab-<id>/<kind>/<ab>/<sha256>[.<ext>]``, per app and per lab, so that deleting one lab's
files never reaches another's. On the filesystem, bytes go to a temporary file under
``<MEDIA_ROOT>/.tmp`` (hashed as they are written) and are renamed into place, so a reader never
sees half a file; remote storages (S3) write objects atomically by themselves.

Nothing here assumes a local path. Code that needs a file on this machine (a worker reading
arrays, a parser that wants a path) asks :func:`local_file` or :func:`local_copy`: on the
filesystem that is the stored file itself; on a remote storage the file is fetched once into a
local cache keyed by its content hash (``STORAGE_CACHE_DIR``), checked against that hash, and
reused by every later caller on the machine.

Over S3 (django-storages' ``S3Storage``, ``STORAGE_BACKEND=s3``): ``save`` must hand back the
name it was given (the settings set ``file_overwrite``; a storage that renames is caught here);
S3's own errors (botocore's, which are no ``OSError``) count as storage failures where a
filesystem's ``OSError`` would; an object is fetched into the cache straight from S3 (ranged
GETs on threads, hashed as written) rather than through ``S3File``, which would first spool the
whole object; and :func:`walk` lists a prefix with one flat listing that carries each object's
modification time, instead of a listing per folder and a HEAD per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
_DIGEST = re.compile(r"(?:^|/)([0-9a-f]{64})(?:\.[A-Za-z0-9]+)?$")


class StorageError(Exception):
    """A stored file is missing or does not hold the bytes its name says."""


def _remote_errors() -> tuple[type[BaseException], ...]:
    """The errors a storage call may raise besides ``OSError``: botocore's (S3), when installed."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is a requirement
        return ()
    return (BotoCoreError, ClientError)


#: What a failed storage call raises: a filesystem's OSError, or S3's botocore errors.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, *_remote_errors())


def _s3(storage: Storage):
    """``storage`` when it is django-storages' S3Storage, else None."""
    module = sys.modules.get("storages.backends.s3")  # not imported: no S3Storage exists (and a
    if module is None:  # filesystem deployment does not pay for importing boto3)
        return None
    return storage if isinstance(storage, module.S3Storage) else None


def _s3_key(storage, name: str) -> str:
    """The object key of ``name`` in S3Storage ``storage`` (its ``location`` prefix added)."""
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


def content_name(*, app: str, lab_id: int, kind: str, digest: str, ext: str = "") -> str:
    """``<app>/lab-<id>/<kind>/<ab>/<sha256>[.<ext>]``."""
    suffix = f".{ext}" if ext else ""
    return f"{app}/lab-{lab_id}/{kind}/{digest[:2]}/{digest}{suffix}"


def lab_prefix(*, app: str, lab_id: int) -> str:
    """The folder that holds every file ``app`` stored for one lab."""
    return f"{app}/lab-{lab_id}/"


def digest_of(name: str) -> str | None:
    """The SHA-256 a content-addressed name carries, or None for another name."""
    match = _DIGEST.search(name)
    return match.group(1) if match else None


def file_sha256(fh: BinaryIO) -> str:
    fh.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(CHUNK), b""):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


def _storage(storage: Storage | None) -> Storage:
    return storage or default_storage


def local_path(name: str, storage: Storage | None = None) -> Path | None:
    """The stored file's path on this machine, or None for a remote storage (S3)."""
    try:
        return Path(_storage(storage).path(name))
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
    storage = _storage(storage)
    fh.seek(0)
    staging = local_path(".tmp", storage)
    if staging is None:
        digest = file_sha256(fh)
        name = name_for(digest)
        if storage.exists(name):
            return name, digest, False
        fh.seek(0)
        try:
            saved = storage.save(name, File(fh, name=name))
        finally:
            fh.seek(0)
        if saved != name:
            # A storage that does not overwrite (S3Storage with file_overwrite=False) found the
            # name taken, by a concurrent writer of the same bytes, and stored a renamed copy:
            # the content-addressed name is there, the copy is not wanted.
            delete(saved, storage=storage)
            return name, digest, False
        return name, digest, True
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


@dataclass(frozen=True)
class Stored:
    """One content-addressed file: its storage name, digest and whether this call wrote it."""

    name: str
    sha256: str
    created: bool


def put(
    *, app: str, lab_id: int, kind: str, fh: BinaryIO, ext: str = "", storage: Storage | None = None
) -> Stored:
    """Store ``fh``'s bytes at ``content_name(app=..., lab_id=..., kind=..., ext=...)``."""
    name, digest, created = put_content_addressed(
        lambda d: content_name(app=app, lab_id=lab_id, kind=kind, digest=d, ext=ext), fh, storage
    )
    return Stored(name, digest, created)


class FileBatch:
    """The files one write stored, so that they can be removed if its row is not saved."""

    def __init__(self, *, app: str, lab_id: int, storage: Storage | None = None):
        self.app = app
        self.lab_id = lab_id
        self.storage = _storage(storage)
        self.created: list[str] = []

    def put(self, *, kind: str, fh: BinaryIO, ext: str = "") -> str:
        """Store ``fh``'s bytes at their content-addressed name; returns the name."""
        stored = put(
            app=self.app, lab_id=self.lab_id, kind=kind, ext=ext, fh=fh, storage=self.storage
        )
        if stored.created:
            self.created.append(stored.name)
        return stored.name

    def discard(self) -> None:
        """Delete every file this batch created (the row that would name them was not saved)."""
        for name in self.created:
            delete(name, storage=self.storage)
        self.created.clear()


def open_file(name: str, storage: Storage | None = None) -> BinaryIO:
    """The stored file, opened for reading (a local file or a remote object's stream).

    Raises:
        StorageError: the file is not in the storage.
    """
    try:
        return _storage(storage).open(name, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise StorageError(f"{name}: the file is missing from storage.") from exc


def read_bytes(name: str, storage: Storage | None = None) -> bytes:
    with open_file(name, storage) as fh:
        return fh.read()


def delete(name: str, storage: Storage | None = None) -> bool:
    """Delete a stored file; False (logged) where the storage could not."""
    try:
        _storage(storage).delete(name)
    except STORAGE_ERRORS:
        log.warning("Could not delete %s", name, exc_info=True)
        return False
    return True


def size(name: str, storage: Storage | None = None) -> int:
    return _storage(storage).size(name)


def cache_dir() -> Path:
    return Path(settings.STORAGE_CACHE_DIR)


def local_file(name: str, storage: Storage | None = None) -> Path:
    """A path on this machine that holds the stored file's bytes.

    On the filesystem storage that is the stored file. On a remote storage the file is fetched
    (streamed, never whole in memory) into ``STORAGE_CACHE_DIR/<ab>/<sha256>``, its hash checked
    against the name, and renamed into place, so concurrent callers share one copy and a half
    fetched file is never seen. Files whose names carry no hash are fetched to a temporary cache
    name and not kept across calls of other names.

    Raises:
        StorageError: the file is missing, or its bytes do not match the hash in its name.
    """
    storage = _storage(storage)
    path = local_path(name, storage)
    if path is not None:
        if not path.exists():
            raise StorageError(f"{name}: the file is missing from storage.")
        return path
    digest = digest_of(name)
    key = digest or hashlib.sha256(name.encode()).hexdigest()
    suffix = Path(name).suffix
    target = cache_dir() / key[:2] / f"{key}{suffix}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as out:
            got = _fetch(name, storage, out)
        if digest is not None and got != digest:
            raise StorageError(f"{name}: the stored bytes do not match their hash ({got}).")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class _HashingWriter:
    """A write-only file that hashes what it passes on. It has no ``seek``, so that s3transfer
    writes the parts of a threaded download in order."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.hasher = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self.out.write(data)


def _fetch(name: str, storage: Storage, out: BinaryIO) -> str:
    """Copy the stored file into ``out``; returns the SHA-256 of the bytes copied.

    An S3 object is downloaded straight into ``out`` (ranged GETs on threads for a large one);
    reading it through ``storage.open`` would first spool all of it into an ``S3File``.
    """
    s3 = _s3(storage)
    if s3 is None:
        with open_file(name, storage) as src:
            return _copy_hashing(src, out)
    from botocore.exceptions import ClientError

    writer = _HashingWriter(out)
    try:
        s3.bucket.Object(_s3_key(s3, name)).download_fileobj(writer, Config=s3.transfer_config)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            raise StorageError(f"{name}: the file is missing from storage.") from exc
        raise
    return writer.hasher.hexdigest()


def walk(prefix: str, storage: Storage | None = None) -> Iterator[tuple[str, datetime | None]]:
    """Every stored name under the folder ``prefix`` (ending in ``/``), with its modification
    time (aware, UTC; None where the storage cannot say).

    Over S3, one flat listing (1000 keys a request) that carries the times; elsewhere a listing
    per folder through the storage API and ``get_modified_time`` per file.
    """
    storage = _storage(storage)
    s3 = _s3(storage)
    if s3 is not None:
        key_prefix = _s3_key(s3, prefix)
        if prefix.endswith("/") and not key_prefix.endswith("/"):
            key_prefix += "/"
        root = _s3_key(s3, "")  # the location prefix, "" or "<location>/"
        for obj in s3.bucket.objects.filter(Prefix=key_prefix):
            if not obj.key.endswith("/"):  # a folder marker another tool may have made
                yield obj.key[len(root) :], _aware(obj.last_modified)
        return
    yield from _walk_folders(prefix, storage)


def _walk_folders(prefix: str, storage: Storage) -> Iterator[tuple[str, datetime | None]]:
    try:
        folders, files = storage.listdir(prefix)
    except (FileNotFoundError, NotImplementedError):
        return
    for f in files:
        name = f"{prefix}{f}"
        try:
            when = _aware(storage.get_modified_time(name))
        except (NotImplementedError, *STORAGE_ERRORS):
            when = None
        yield name, when
    for d in folders:
        yield from _walk_folders(f"{prefix}{d}/", storage)


def _aware(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@contextlib.contextmanager
def local_copy(name: str, storage: Storage | None = None) -> Iterator[str]:
    """A local path to a stored file for the length of a ``with`` block: the file itself on the
    filesystem, else the content-hash cache's copy (see :func:`local_file`)."""
    yield str(local_file(name, storage))


def spooled_temp() -> tempfile.SpooledTemporaryFile:
    """A temporary file that stays in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, then on disk."""
    return tempfile.SpooledTemporaryFile(
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )


def cache_prune(*, max_bytes: int) -> int:
    """Remove the least recently used cached copies until the cache holds at most ``max_bytes``;
    returns the bytes freed."""
    root = cache_dir()
    if not root.exists():
        return 0
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_atime)
    total = sum(p.stat().st_size for p in files)
    freed = 0
    for p in files:
        if total - freed <= max_bytes:
            break
        n = p.stat().st_size
        p.unlink(missing_ok=True)
        freed += n
    return freed


def copy_to(name: str, dst: BinaryIO, storage: Storage | None = None) -> None:
    """Stream a stored file into ``dst``."""
    with open_file(name, storage) as src:
        shutil.copyfileobj(src, dst, CHUNK)
