"""Recordings' files: stored content-addressed (sha256) through Django's storage, atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage

from apps.imaging.storage import CHUNK, local_path, put_content_addressed


def recording_name(*, lab_id: int, digest: str) -> str:
    """``gaze/lab-<id>/recordings/<ab>/<sha256>``: per lab, so a delete never reaches another
    lab's files."""
    return f"gaze/lab-{lab_id}/recordings/{digest[:2]}/{digest}"


def put(*, lab_id: int, fh: BinaryIO) -> tuple[str, str, bool]:
    """Store ``fh``'s bytes at their content-addressed name.

    Returns:
        (name, sha256, created): ``created`` is False when the same bytes were there already.
    """
    return put_content_addressed(lambda digest: recording_name(lab_id=lab_id, digest=digest), fh)


@contextlib.contextmanager
def local_copy(name: str) -> Iterator[str]:
    """A local path to a stored file: the file itself on the filesystem, else a temporary copy
    (streamed, so a 400 MB export never sits in memory)."""
    path = local_path(name)
    if path is not None:
        yield str(path)
        return
    fd, tmp = tempfile.mkstemp(dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="gaze-")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)
