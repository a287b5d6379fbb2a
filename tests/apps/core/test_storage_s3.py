"""The storage module over a real S3 API: django-storages' S3Storage against moto's server on
127.0.0.1 (no other address is ever reached): content-addressed writes, reads, the worker's
hash cache, batches, deletes, the sweep's listing, and the app end to end with every file in
the bucket and none under MEDIA_ROOT."""

from __future__ import annotations

import hashlib
import io
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from django.core.files.storage import default_storage
from django.core.management import call_command
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

from apps.core import files, storage
from apps.gaze import services as gaze
from apps.gaze.models import Reading
from apps.imaging.models import Image
from ml import imaging
from ml.synthetic import make_phantom
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import LABELS, H, W, ingest_phantoms, simulated
from tests.apps.gaze.objects import gaze_recording
from tests.apps.imaging.batches import upload
from tests.apps.imaging.dicoms import dicom_bytes, gradient
from tests.conftest import client_for

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
PREFIX = "media"


@pytest.fixture(scope="module")
def endpoint():
    """moto's S3 in server mode on a free port of 127.0.0.1: a real HTTP S3 API."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            mp.delenv(var, raising=False)  # nothing may route 127.0.0.1 elsewhere
        for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **KEYS)


@pytest.fixture
def bucket(client) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def s3_options(endpoint: str, bucket: str, **extra) -> dict:
    """The OPTIONS config/settings.py gives S3Storage for STORAGE_BACKEND=s3 with an endpoint."""
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": REGION,
        "access_key": KEYS["aws_access_key_id"],
        "secret_key": KEYS["aws_secret_access_key"],
        "location": PREFIX,
        "addressing_style": "path",
        "file_overwrite": True,
        "querystring_auth": False,
        "default_acl": None,
        "max_memory_size": 2 * 1024**2,
        **extra,
    }


@pytest.fixture
def s3(endpoint, bucket) -> S3Storage:
    return S3Storage(**s3_options(endpoint, bucket))


@pytest.fixture(autouse=True)
def dirs(settings, tmp_path) -> tuple[Path, Path]:
    """An empty MEDIA_ROOT (nothing may land there) and an empty hash cache."""
    media, cache = tmp_path / "media", tmp_path / "cache"
    media.mkdir()
    settings.MEDIA_ROOT = str(media)
    settings.STORAGE_CACHE_DIR = str(cache)
    return media, cache


@pytest.fixture
def s3_default(settings, endpoint, bucket) -> str:
    """STORAGES["default"] switched to the bucket (pytest-django's ``settings`` sends
    setting_changed; Django's test signal handler then drops the cached backends and resets
    ``default_storage``). Returns the bucket name."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": s3_options(endpoint, bucket),
        },
    }
    assert storage.local_path("x") is None  # default_storage is set up anew: remote
    assert isinstance(default_storage._wrapped, S3Storage)
    return bucket


def keys(client, bucket: str) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def local_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- The storage module over S3 ------------------------------------------------------------------


def test_put_stores_once_under_the_prefix_and_reads_back(s3, client, bucket, dirs) -> None:
    data = b"recording bytes" * 1000
    digest = hashlib.sha256(data).hexdigest()
    assert storage.local_path("x", s3) is None  # no local paths: the remote branch
    stored = storage.put(app="gaze", lab_id=4, kind="recordings", fh=io.BytesIO(data), storage=s3)
    assert stored == storage.Stored(f"gaze/lab-4/recordings/{digest[:2]}/{digest}", digest, True)
    assert keys(client, bucket) == {f"{PREFIX}/{stored.name}"}
    again = storage.put(app="gaze", lab_id=4, kind="recordings", fh=io.BytesIO(data), storage=s3)
    assert again == storage.Stored(stored.name, digest, False)
    assert storage.read_bytes(stored.name, s3) == data
    assert storage.size(stored.name, s3) == len(data)
    out = io.BytesIO()
    storage.copy_to(stored.name, out, s3)
    assert out.getvalue() == data
    assert local_files(dirs[0]) == []  # no staging under MEDIA_ROOT for a remote storage


def test_a_storage_that_renames_gets_the_content_addressed_name_back(
    endpoint, bucket, client, monkeypatch
) -> None:
    """S3Storage with file_overwrite=False appends a suffix to a taken name: a writer that lost
    the race to another writer of the same bytes must still answer with the one name."""
    s3 = S3Storage(**s3_options(endpoint, bucket, file_overwrite=False))
    first = storage.put(app="a", lab_id=1, kind="k", ext="npy", fh=io.BytesIO(b"x"), storage=s3)
    calls = []
    real_exists = S3Storage.exists

    def first_miss(self, name):  # the race: the other writer saves right after this check
        calls.append(name)
        return False if len(calls) == 1 else real_exists(self, name)

    monkeypatch.setattr(S3Storage, "exists", first_miss)
    again = storage.put(app="a", lab_id=1, kind="k", ext="npy", fh=io.BytesIO(b"x"), storage=s3)
    assert again == storage.Stored(first.name, first.sha256, False)
    assert keys(client, bucket) == {f"{PREFIX}/{first.name}"}  # the renamed copy is gone


def test_local_file_fetches_into_an_empty_cache_once(s3, client, bucket, dirs) -> None:
    cache = dirs[1]
    assert not cache.exists()
    data = np.arange(3_000_000, dtype=np.float32).tobytes()  # 12 MB: a threaded ranged download
    stored = storage.put(app="imaging", lab_id=1, kind="array", ext="npy", fh=io.BytesIO(data),
                         storage=s3)  # fmt: skip
    path = storage.local_file(stored.name, s3)
    assert path == cache / stored.sha256[:2] / f"{stored.sha256}.npy"
    assert path.read_bytes() == data
    assert local_files(cache) == [path]  # no partial fetch left
    client.delete_object(Bucket=bucket, Key=f"{PREFIX}/{stored.name}")
    assert not s3.exists(stored.name)
    assert storage.local_file(stored.name, s3) == path  # the cached copy serves
    with storage.local_copy(stored.name, s3) as p:
        assert Path(p).read_bytes() == data
    with pytest.raises(storage.StorageError, match="missing from storage"):
        storage.open_file(stored.name, s3)


def test_a_corrupt_object_is_refused_and_not_cached(s3, client, bucket, dirs) -> None:
    stored = storage.put(app="gaze", lab_id=1, kind="recordings", fh=io.BytesIO(b"good bytes"),
                         storage=s3)  # fmt: skip
    client.put_object(Bucket=bucket, Key=f"{PREFIX}/{stored.name}", Body=b"bad bytes")
    with pytest.raises(storage.StorageError, match="do not match their hash"):
        storage.local_file(stored.name, s3)
    assert local_files(dirs[1]) == []


def test_a_missing_object_is_a_storage_error(s3) -> None:
    name = storage.content_name(app="gaze", lab_id=1, kind="recordings", digest="0" * 64)
    with pytest.raises(storage.StorageError, match="missing from storage"):
        storage.local_file(name, s3)
    with pytest.raises(storage.StorageError, match="missing from storage"):
        storage.open_file(name, s3)
    with pytest.raises(FileNotFoundError):
        storage.size(name, s3)
    assert storage.delete(name, s3)  # deleting what is not there is no failure


def test_a_batch_discards_what_it_created_and_delete_deletes(s3, client, bucket) -> None:
    first = storage.FileBatch(app="imaging", lab_id=1, storage=s3)
    kept = first.put(kind="preview", ext="png", fh=io.BytesIO(b"kept"))
    batch = storage.FileBatch(app="imaging", lab_id=1, storage=s3)
    assert batch.put(kind="preview", ext="png", fh=io.BytesIO(b"kept")) == kept
    new = batch.put(kind="preview", ext="png", fh=io.BytesIO(b"new"))
    assert s3.exists(new)
    batch.discard()
    assert keys(client, bucket) == {f"{PREFIX}/{kept}"}
    assert storage.delete(kept, s3) and keys(client, bucket) == set()


def test_a_failed_delete_is_logged_not_raised(bucket, caplog) -> None:
    """S3's errors are botocore's, no OSError: delete() still answers False and logs."""
    with socket.socket() as sock:  # a port of 127.0.0.1 that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})
    down = S3Storage(**s3_options(f"http://127.0.0.1:{port}", bucket, client_config=config))
    assert storage.delete("a/lab-1/k/00/" + "0" * 64, down) is False
    assert "Could not delete" in caplog.text


def test_walk_lists_names_and_times_without_the_prefix(s3) -> None:
    names = {
        storage.put(
            app="gaze", lab_id=lab, kind=kind, fh=io.BytesIO(bytes([lab, i])), storage=s3
        ).name  # fmt: skip
        for lab in (1, 2)
        for i, kind in enumerate(("recordings", "saliency"))
    }
    storage.put(app="imaging", lab_id=1, kind="preview", fh=io.BytesIO(b"other app"), storage=s3)
    listed = dict(storage.walk("gaze/", s3))
    assert set(listed) == names
    assert all(when is not None and when.tzinfo is not None for when in listed.values())
    assert set(dict(storage.walk("gaze/lab-1/", s3))) == {n for n in names if "/lab-1/" in n}
    assert list(storage.walk("nothing/", s3)) == []


# --- The sweep and the app, with STORAGES["default"] on S3 --------------------------------------


@pytest.mark.django_db
def test_the_sweep_finds_old_files_no_row_names(s3_default, client, personas) -> None:
    rec = gaze_recording(personas.lab_a)  # the recording's file is named by its row
    stray = storage.put(app="gaze", lab_id=personas.lab_a.pk, kind="recordings",
                        fh=io.BytesIO(b"written by a request that then failed")).name  # fmt: skip
    assert keys(client, s3_default) == {f"{PREFIX}/{rec.file_path}", f"{PREFIX}/{stray}"}
    assert files.orphans(apps=["gaze"], older_than=timedelta(hours=1)) == []  # young: kept
    assert files.orphans(apps=["gaze"], older_than=timedelta(0)) == [stray]
    out = io.StringIO()
    call_command("storage_sweep", "--older-than-hours", "0", stdout=out)
    assert f"deleted {stray}" in out.getvalue()
    assert keys(client, s3_default) == {f"{PREFIX}/{rec.file_path}"}


@pytest.mark.django_db
def test_the_app_end_to_end_keeps_every_file_in_the_bucket(
    s3_default, client, personas, dirs, tmp_path
) -> None:
    """Upload an image through the API and phantoms through the services, upload and parse a
    recording, fetch the image's array and a saliency map through the API: every file is in
    the bucket, none under MEDIA_ROOT, and the worker-side reads went through the hash cache."""
    media, cache = dirs
    assert local_files(cache) == []
    lab, researcher = personas.lab_a, personas.researcher_a
    api = client_for(researcher)

    # An image through the upload API (staged, then ingested by the batch, as the worker would).
    data = dicom_bytes(gradient(20, 16))
    status = upload(researcher, lab, ("s50414267.dcm", data))
    assert status["status"] == "done" and status["created"] == 1, status
    image = api.get(status["files"][0]["image"]["url"]).json()
    preview = api.get(image["preview_url"], HTTP_ACCEPT="image/png")  # an S3File streamed out
    assert preview.status_code == 200
    assert b"".join(preview.streaming_content).startswith(b"\x89PNG")
    response = api.get(image["array_url"])
    assert response.status_code == 200
    array = np.load(io.BytesIO(b"".join(response.streaming_content)))
    np.testing.assert_array_equal(array, imaging.read_dicom(io.BytesIO(data))[0])

    # Phantoms through the services, a recording of them uploaded and parsed.
    phantoms = [make_phantom(label, seed=i + 1, height=H, width=W) for i, label in
                enumerate(LABELS)]  # fmt: skip
    ingest_phantoms(lab, researcher, phantoms, tmp_path)
    reader = gaze.reader_create(lab=lab, code="R1")
    session = gaze.reading_session_create(
        lab=lab, reader=reader, created_by=researcher, name="S1",
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
    paths = write_eyelink_asc(simulated(phantoms, 1000, n_fix=6), tmp_path / "r1.asc", seed=1)
    [rec] = gaze.recording_upload(
        session=session, uploaded_by=researcher, uploads=[gaze.tmp_upload(paths["asc"])],
        enqueue=False,
    )  # fmt: skip
    rec = gaze.recording_parse(recording_id=rec.pk)
    assert rec.status == "done", rec.errors
    reading = Reading.objects.filter(recording=rec).first()
    assert reading is not None

    # A saliency map made and fetched through the API.
    made = api.get(f"/api/v1/readings/{reading.pk}/saliency/", {"height": 20, "width": 16})
    assert made.status_code == 200, made.content
    npy = api.get(made.json()["npy_url"])
    assert npy.status_code == 200
    values = np.load(io.BytesIO(b"".join(npy) if npy.streaming else npy.content))
    assert values.shape == (20, 16) and values.sum() == pytest.approx(1.0, abs=1e-5)

    # Every file is in the bucket; nothing was written under MEDIA_ROOT.
    stored = keys(client, s3_default)
    assert f"{PREFIX}/{rec.file_path}" in stored
    assert any(k.startswith(f"{PREFIX}/gaze/lab-{lab.pk}/saliency/") for k in stored)
    assert any(k.startswith(f"{PREFIX}/imaging/lab-{lab.pk}/") for k in stored)
    assert all(k.startswith(f"{PREFIX}/") for k in stored)
    assert local_files(media) == []

    # The worker-side reads (the parser's recording, the image's pixels) went through the hash
    # cache: copies named by their sha256, checked against it.
    cached = {p.name.split(".")[0] for p in local_files(cache)}
    assert storage.digest_of(rec.file_path) in cached
    assert storage.digest_of(Image.objects.get(pk=image["id"]).array_path) in cached
