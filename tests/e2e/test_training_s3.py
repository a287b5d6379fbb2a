"""The training path with every file in an S3 bucket: moto's S3 server on 127.0.0.1, a web
server and a worker configured only by ``STORAGE_BACKEND=s3`` and ``S3_*`` as on another machine,
PostgreSQL and the suite's broker. Images go into the bucket; a snapshot is built through the API
by the worker, whose local cache starts empty; a job trains on it to a model version; nothing is
written under MEDIA_ROOT, and the worker's cache holds what it read by content hash."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.e2e.stack import (
    manage,
    postgres_server,
    running_stack,
    scratch_postgres,
    stack_broker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGION, PREFIX = "us-east-1", "media"

# Run inside the stack: a lab of 12 small images read by two readers, stored through the storage
# module (so into the bucket).
DATA = r"""
from apps.labs.models import Lab, User
from tests.apps.datasets.objects import lab_with_data

lab = Lab.objects.get(slug="stack-lab")
lab_with_data(lab, User.objects.get(username="stack-admin"))
print("IMAGES", lab.images.count())
"""


@pytest.fixture
def s3_endpoint(monkeypatch):
    """moto's S3 API in server mode on a free port of 127.0.0.1, with no proxy in the way."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)  # the stack copies this environment
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _objects(client, bucket: str) -> dict[str, int]:
    names: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        names.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return names


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_snapshot_and_training_with_files_in_s3_and_an_empty_worker_cache(tmp_path, s3_endpoint):
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name=REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip
    bucket = f"cxr-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    folder = tmp_path / "stack"
    s3_env = {
        "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3_endpoint,
        "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing", "S3_REGION": REGION,
        "S3_PREFIX": PREFIX, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "STORAGE_CACHE_DIR": str(folder / "web-cache"), "TRAINING_BATCH_PAUSE_S": "0.2",
    }  # fmt: skip
    worker_cache = tmp_path / "worker-machine" / "cache"
    with (
        scratch_postgres(postgres_server()) as database,
        running_stack(
            folder, database_url=database, broker_url=stack_broker(), labels=("CHF",),
            worker=False, extra_env=s3_env,
        ) as stack,
    ):  # fmt: skip
        out = manage(stack.env, "shell", stdin=DATA)
        assert "IMAGES 13" in out, out  # the stack's own image and the 12 of lab_with_data
        uploaded = _objects(client, bucket)
        assert len(uploaded) >= 13, sorted(uploaded)  # each image's files, at least one each

        # A GPU worker on another machine: same database, broker and bucket, its own empty cache.
        assert not worker_cache.exists()
        stack.start_worker(env={"STORAGE_CACHE_DIR": str(worker_cache)})

        answer = requests.post(
            stack.url + "/api/v1/snapshots/", headers=stack.headers(), timeout=60,
            json={"lab": stack.lab, "name": "in s3", "labels": ["Normal", "CHF", "Pneumonia"],
                  "resolution": [64, 64]},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        snapshot = answer.json()
        built = wait_for(
            lambda: (s := stack.get(snapshot["status_url"]).json())["status"]
            in ("ready", "failed") and s,
            180, "the snapshot build on the worker",
        )  # fmt: skip
        assert built["status"] == "ready", f"{built}\n{stack.logs()}"
        cached_after_snapshot = _files(worker_cache)
        assert cached_after_snapshot, "the worker read the images through its cache"

        answer = requests.post(
            stack.url + "/api/v1/training-jobs/", headers=stack.headers(), timeout=60,
            json={"snapshot": snapshot["id"], "preset": "quick", "base_channels": 8,
                  "batch_size": 2, "epochs": 3},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        status_url = answer.json()["status_url"]
        wait_for(
            lambda: (s := stack.get(status_url).json())["status"] == "running" and s["batch"] > 0,
            180, "progress of the running job",
        )  # fmt: skip
        final = wait_for(
            lambda: (s := stack.get(status_url).json())["status"]
            in ("succeeded", "failed", "cancelled") and s,
            300, "the job to finish",
        )  # fmt: skip
        job = stack.get(f"/api/v1/training-jobs/{final['id']}/").json()
        assert final["status"] == "succeeded", f"{job['error']}\n{job['traceback']}\n{stack.logs()}"
        assert [e["epoch"] for e in job["epochs"]] == [1, 2, 3]

        version = stack.get(f"/api/v1/model-versions/{final['version']}/").json()
        download = stack.get(version["checkpoint_url"])
        assert download.status_code == 200
        digest = hashlib.sha256(download.content).hexdigest()
        assert digest == version["checkpoint_sha256"]

        # The version's automatic evaluation on the test split runs on the same worker.
        evaluation = wait_for(
            lambda: (r := stack.get(f"/api/v1/evaluations/?version={version['id']}").json())[
                "count"
            ]
            and r["results"][0]["status"] in ("succeeded", "failed")
            and r["results"][0],
            180, "the automatic evaluation",
        )  # fmt: skip
        assert evaluation["status"] == "succeeded", f"{evaluation['error']}\n{stack.logs()}"
        assert evaluation["automatic"] and evaluation["split"] == "test"
        rows = stack.get(evaluation["images_url"]).json()["results"]
        assert len(rows) == evaluation["total"] > 0
        npz = stack.get(rows[0]["map_url"])
        assert npz.status_code == 200 and npz.content[:2] == b"PK"

        # Every file is in the bucket: the snapshot's manifest and arrays, the checkpoint, the
        # evaluation's maps.
        stored = _objects(client, bucket)
        assert any("/evaluation/" in k or k.startswith(PREFIX + "/evaluation") for k in stored)
        assert any(digest in key for key in stored), sorted(stored)
        snapshot_keys = [k for k in stored if k not in uploaded]
        assert any(k.endswith(".json") for k in snapshot_keys), sorted(snapshot_keys)
        assert all(k.startswith(PREFIX + "/") for k in stored)
        # Nothing under MEDIA_ROOT, on either machine.
        media = Path(stack.env["VAR_DIR"]) / "media"
        assert _files(media) == [], _files(media)
        # The worker's cache holds what it fetched, each under its content hash.
        for path in _files(worker_cache):
            if len(path.stem) == 64:
                assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
        assert any(len(p.stem) == 64 for p in _files(worker_cache))
