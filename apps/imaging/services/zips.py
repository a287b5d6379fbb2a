"""Zip uploads: safe member names, zip-bomb limits, extraction of one member at a time.

A zip with an unsafe entry name, too many entries, an encrypted entry, or entries that expand
too much (``IMAGING_ZIP_MAX_FILES``, ``IMAGING_ZIP_MAX_RATIO``, ``IMAGING_ZIP_MAX_BYTES``) is
refused whole before any of its entries is read.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings

from apps.core.storage import spooled_temp
from apps.imaging.services.ingest import ImageRejected


def safe_member_name(archive: str, name: str) -> str:
    """The entry's name with ``/`` separators; ``ImageRejected`` for an absolute or ``..`` path."""
    normalised = name.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if (
        normalised.startswith("/")
        or (len(normalised) > 1 and normalised[1] == ":")
        or ".." in parts
        or "\x00" in normalised
    ):
        raise ImageRejected(
            archive, f"contains the unsafe path {name!r} (absolute or with '..'); nothing stored."
        )
    return normalised


def _checked_members(archive: str, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > settings.IMAGING_ZIP_MAX_FILES:
        raise ImageRejected(
            archive, f"holds {len(infos):,} entries; at most "
            f"{settings.IMAGING_ZIP_MAX_FILES:,} are accepted.",
        )  # fmt: skip
    total = 0
    members = []
    for info in infos:
        name = safe_member_name(archive, info.filename)
        if info.is_dir():
            continue
        base = PurePosixPath(name).name
        if name.startswith("__MACOSX/") or base.startswith(".") or not base:
            continue
        if info.flag_bits & 0x1:
            raise ImageRejected(archive, f"has the encrypted entry {name!r}.")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > settings.IMAGING_ZIP_MAX_RATIO:
            raise ImageRejected(
                archive, f"entry {name!r} expands {ratio:,.0f} times (at most "
                f"{settings.IMAGING_ZIP_MAX_RATIO}); refused as a possible zip bomb.",
            )  # fmt: skip
        if total > settings.IMAGING_ZIP_MAX_BYTES:
            raise ImageRejected(
                archive, f"expands to more than {settings.IMAGING_ZIP_MAX_BYTES:,} bytes; "
                "refused as a possible zip bomb.",
            )  # fmt: skip
        members.append(info)
    if not members:
        raise ImageRejected(archive, "holds no files.")
    return members


@contextlib.contextmanager
def zip_open(archive: str, fh: BinaryIO) -> Iterator[tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]]:
    """Open an uploaded zip and check every entry's name and sizes before any is read.

    Yields the open archive and its members worth ingesting (no folders, no ``__MACOSX/`` or
    hidden files). Raises ``ImageRejected`` naming ``archive`` when the zip is refused whole.
    """
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImageRejected(archive, f"is not a readable zip archive ({exc}).") from None
    with zf:
        yield zf, _checked_members(archive, zf)


def zip_extract(archive: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> BinaryIO:
    """Copy one entry to a temporary file, never more bytes than its header declares."""
    limit = min(info.file_size, settings.UPLOAD_MAX_BYTES)
    out = spooled_temp()
    try:
        with zf.open(info) as src:
            copied = 0
            for chunk in iter(lambda: src.read(1024 * 1024), b""):
                copied += len(chunk)
                if copied > limit:
                    raise ImageRejected(
                        f"{archive}/{info.filename}", "expands beyond its declared size."
                    )
                out.write(chunk)
    except ImageRejected:
        out.close()
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        out.close()
        raise ImageRejected(f"{archive}/{info.filename}", f"cannot be extracted ({exc}).") from None
    out.seek(0)
    return out
