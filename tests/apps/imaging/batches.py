"""Helpers for tests that upload through the API: post, then follow the batch to its end."""

from __future__ import annotations

import numpy as np

from apps.imaging import services
from tests.apps.imaging.conftest import as_upload
from tests.apps.imaging.dicoms import dicom_bytes, gradient, png_bytes
from tests.conftest import client_for

URL = "/api/v1/images/"


def post_files(user, lab, *files, **extra):
    """POST ``files`` ((name, bytes) pairs) to the upload endpoint; the raw answer."""
    body = {"lab": lab.pk, "files": [as_upload(n, d) for n, d in files], **extra}
    return client_for(user).post(URL, body, format="multipart")


def run_batch(user, answer) -> dict:
    """Run the batch an upload answered with (in this process, as the worker would) and return
    its final status from the status URL."""
    assert answer.status_code == 202, answer.json()
    services.upload_batch_run(batch_id=answer.json()["id"])
    status = client_for(user).get(answer["Location"])
    assert status.status_code == 200, status.json()
    return status.json()


def upload(user, lab, *files, **extra) -> dict:
    """Upload ``files`` and follow the batch to its end: its final status."""
    return run_batch(user, post_files(user, lab, *files, **extra))


def leaves(status: dict) -> list[dict]:
    """The per-image results of a batch status (a zip's own row left out)."""
    return [f for f in status["files"] if f["status"] != "expanded"]


def twelve_files() -> list[tuple[str, bytes]]:
    """Ten DICOMs, a PNG and a text file that is no image."""
    files = [(f"cxr{i:02d}.dcm", dicom_bytes(gradient(24, 20, seed=i))) for i in range(10)]
    files.append(("photo.png", png_bytes(gradient(16, 16, maximum=255, dtype=np.uint8, seed=50))))
    files.append(("notes.txt", b"not an image"))
    return files
