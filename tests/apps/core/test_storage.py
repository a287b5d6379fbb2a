"""The content-addressed writer: one pass hashes and writes, the same bytes are stored once, and
nothing is left behind when a write fails."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.storage import Storage

from apps.core import storage
from apps.core.storage import put_content_addressed


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


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


class RemoteLike(Storage):
    """A storage with no local paths, as S3 is: objects behind open/save/exists/delete/size."""

    def __init__(self, location: str):
        self.location = location

    def _real(self, name: str) -> Path:
        return Path(self.location) / name

    def _open(self, name, mode="rb"):
        return File(open(self._real(name), mode))

    def _save(self, name, content):
        target = self._real(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            for chunk in content.chunks():
                out.write(chunk)
        return name

    def exists(self, name):
        return self._real(name).exists()

    def delete(self, name):
        self._real(name).unlink(missing_ok=True)

    def size(self, name):
        return self._real(name).stat().st_size


@pytest.fixture
def remote(tmp_path) -> RemoteLike:
    return RemoteLike(location=str(tmp_path / "remote"))


def test_names_carry_app_lab_kind_and_hash() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    name = storage.content_name(app="gaze", lab_id=7, kind="saliency", digest=digest, ext="npy")
    assert name == f"gaze/lab-7/saliency/{digest[:2]}/{digest}.npy"
    assert storage.digest_of(name) == digest
    assert (
        storage.digest_of(storage.content_name(app="a", lab_id=1, kind="k", digest=digest))
        == digest
    )
    assert storage.digest_of("imaging/lab-1/preview/not-a-hash.png") is None
    assert name.startswith(storage.lab_prefix(app="gaze", lab_id=7))


def test_a_remote_storage_is_written_without_local_paths(remote, tmp_path) -> None:
    stored = storage.put(
        app="datasets", lab_id=3, kind="arrays", ext="npy", fh=io.BytesIO(b"abc"), storage=remote
    )
    assert stored.created and stored.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert remote.exists(stored.name)
    assert not (tmp_path / "media" / ".tmp").exists()  # no local staging for a remote storage
    again = storage.put(
        app="datasets", lab_id=3, kind="arrays", ext="npy", fh=io.BytesIO(b"abc"), storage=remote
    )
    assert not again.created and again.name == stored.name
    assert storage.read_bytes(stored.name, remote) == b"abc"


def test_local_file_fetches_a_remote_file_once_into_the_hash_cache(remote, tmp_path) -> None:
    data = b"arrays" * 1_000_000  # 6 MB: streamed in chunks
    stored = storage.put(
        app="datasets", lab_id=1, kind="arrays", ext="npy", fh=io.BytesIO(data), storage=remote
    )
    path = storage.local_file(stored.name, remote)
    assert path.read_bytes() == data
    assert path.parent.parent == tmp_path / "cache" and path.name == f"{stored.sha256}.npy"
    # A second call uses the cached copy: the remote object is not read again.
    (Path(remote.location) / stored.name).unlink()
    assert storage.local_file(stored.name, remote) == path
    with storage.local_copy(stored.name, remote) as p:
        assert Path(p).read_bytes() == data
    assert [f for f in (tmp_path / "cache").rglob("*") if f.is_file()] == [
        path
    ]  # no partial fetch left


def test_a_corrupt_remote_file_is_refused_and_not_cached(remote, tmp_path) -> None:
    stored = storage.put(
        app="gaze", lab_id=1, kind="recordings", fh=io.BytesIO(b"good bytes"), storage=remote
    )
    (Path(remote.location) / stored.name).write_bytes(b"bad bytes")
    with pytest.raises(storage.StorageError, match="do not match their hash"):
        storage.local_file(stored.name, remote)
    assert not any(f.is_file() for f in (tmp_path / "cache").rglob("*"))


def test_a_missing_file_is_a_storage_error(remote, media) -> None:
    name = storage.content_name(app="gaze", lab_id=1, kind="recordings", digest="0" * 64)
    for backend in (remote, None):
        with pytest.raises(storage.StorageError, match="missing from storage"):
            storage.local_file(name, backend)
        with pytest.raises(storage.StorageError, match="missing from storage"):
            storage.open_file(name, backend)


def test_local_file_on_the_filesystem_is_the_stored_file(media) -> None:
    stored = storage.put(app="imaging", lab_id=2, kind="dicom", ext="dcm", fh=io.BytesIO(b"DICM"))
    assert storage.local_file(stored.name) == media / stored.name


def test_a_batch_discards_only_what_it_created(remote) -> None:
    first = storage.FileBatch(app="imaging", lab_id=1, storage=remote)
    kept = first.put(kind="preview", ext="png", fh=io.BytesIO(b"kept"))
    batch = storage.FileBatch(app="imaging", lab_id=1, storage=remote)
    assert batch.put(kind="preview", ext="png", fh=io.BytesIO(b"kept")) == kept  # existed already
    new = batch.put(kind="preview", ext="png", fh=io.BytesIO(b"new"))
    batch.discard()
    assert remote.exists(kept) and not remote.exists(new)


def test_cache_prune_keeps_the_cache_under_its_size(remote, tmp_path) -> None:
    names = [
        storage.put(
            app="a", lab_id=1, kind="k", fh=io.BytesIO(bytes([i]) * 1000), storage=remote
        ).name
        for i in range(5)
    ]
    for n in names:
        storage.local_file(n, remote)
    freed = storage.cache_prune(max_bytes=2500)
    left = [f for f in (tmp_path / "cache").rglob("*") if f.is_file()]
    assert freed == 3000 and len(left) == 2
