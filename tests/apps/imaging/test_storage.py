"""The content-addressed writer: one pass hashes and writes, the same bytes are stored once, and
nothing is left behind when a write fails."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from apps.imaging.storage import put_content_addressed
from tests.apps.imaging.conftest import stored_files


def _name(digest: str) -> str:
    return f"things/{digest[:2]}/{digest}.bin"


def test_put_hashes_while_writing_and_stores_once(media: Path) -> None:
    data = bytes(range(256)) * 40000  # 10 MB: chunks hashed on the helper thread
    digest = hashlib.sha256(data).hexdigest()
    fh = io.BytesIO(data)
    fh.seek(123)  # the writer reads from the start whatever the position
    name, got, created = put_content_addressed(_name, fh)
    assert (name, got, created) == (_name(digest), digest, True)
    assert (media / name).read_bytes() == data
    assert fh.tell() == 0
    again = put_content_addressed(_name, io.BytesIO(data))
    assert again == (name, digest, False)
    assert stored_files(media) == [media / name]  # no temporary file left by either call


class _Failing(io.BytesIO):
    def read(self, size: int = -1) -> bytes:
        if self.tell() > 0:
            raise OSError("disk went away")
        return super().read(size)


def test_a_failed_write_leaves_no_file(media: Path) -> None:
    with pytest.raises(OSError, match="disk went away"):
        put_content_addressed(_name, _Failing(b"x" * (9 * 2**20)))
    assert stored_files(media) == []


def test_a_small_file_is_hashed_inline(media: Path) -> None:
    name, digest, created = put_content_addressed(_name, io.BytesIO(b"tiny"))
    assert digest == hashlib.sha256(b"tiny").hexdigest() and created
    assert (media / name).read_bytes() == b"tiny"
