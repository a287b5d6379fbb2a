"""Upload batches: the request stages the files and answers 202; the ingest runs later (here in
this process, as the worker would; tests/apps/imaging/test_worker.py runs a real worker)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core import storage
from apps.imaging import services, tasks
from apps.imaging.models import Image, UploadBatch, UploadBatchFile
from apps.imaging.services import batches
from tests.apps.imaging.batches import post_files, run_batch, twelve_files, upload
from tests.apps.imaging.conftest import stored_files
from tests.apps.imaging.dicoms import dicom_bytes, gradient
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def staged(media):
    return [p for p in stored_files(media) if "incoming" in p.parts]


def test_twelve_files_are_answered_202_before_any_is_ingested(personas, media):
    started = time.monotonic()
    answer = post_files(personas.researcher_a, personas.lab_a, *twelve_files())
    elapsed = time.monotonic() - started
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    # Nothing was ingested in the request: no worker ran, the batch waits in the queue.
    assert body["status"] == "queued" and body["progress"] == {"done": 0, "total": 12, "percent": 0}
    assert [f["status"] for f in body["files"]] == ["queued"] * 12
    assert Image.objects.count() == 0 and len(staged(media)) == 12
    assert answer["Location"] == f"/api/v1/image-uploads/{body['id']}/"
    print(f"\n12-file upload answered in {elapsed:.2f} s")
    still = client_for(personas.viewer_a).get(answer["Location"]).json()
    assert still["status"] == "queued" and still["created_by"] == "researcher_a"

    final = run_batch(personas.researcher_a, answer)
    assert final["status"] == "done" and final["progress"]["done"] == 12
    assert (final["created"], final["duplicates"], final["rejected"]) == (11, 0, 1)
    results = {f["file"]: f for f in final["files"]}
    for i in range(10):
        row = results[f"cxr{i:02d}.dcm"]
        assert row["status"] == "created" and row["image"]["key"] == f"cxr{i:02d}", row
    assert results["notes.txt"]["message"].startswith("notes.txt: is not a DICOM file")
    assert Image.objects.count() == 11
    assert staged(media) == []  # the staged uploads are deleted when the batch ends
    assert UploadBatchFile.objects.exclude(staged_name="").count() == 0


def test_the_status_is_lab_scoped_and_listed(personas):
    answer = post_files(personas.researcher_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient())))
    url = answer["Location"]
    assert client_for(personas.admin_b).get(url).status_code == 404
    assert client_for(None).get(url).status_code in (401, 403)
    assert client_for(personas.viewer_a).get(url).status_code == 200
    listed = client_for(personas.viewer_a).get("/api/v1/image-uploads/").json()["results"]
    assert [b["id"] for b in listed] == [answer.json()["id"]] and "files" not in listed[0]
    assert client_for(personas.admin_b).get("/api/v1/image-uploads/").json()["results"] == []
    for method in ("post", "patch", "put", "delete"):
        response = getattr(client_for(personas.admin_a), method)(url, {}, format="json")
        assert response.status_code == 405, method


def test_viewer_cannot_upload_and_nothing_is_staged(personas, media):
    answer = post_files(personas.viewer_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient())))
    assert answer.status_code == 403
    with pytest.raises(PermissionDenied):
        services.upload_batch_create(
            lab=personas.lab_a,
            created_by=personas.viewer_a,
            uploads=[services.Upload(file=io.BytesIO(b"x"), filename="a.dcm", size=1)],
        )
    assert UploadBatch.objects.count() == 0 and stored_files(media) == []


def test_no_files_or_an_unknown_label_store_nothing(personas, media):
    with pytest.raises(ValidationError, match="No files"):
        services.upload_batch_create(lab=personas.lab_a, created_by=personas.admin_a, uploads=[])
    data = dicom_bytes(gradient())
    with pytest.raises(ValidationError, match="'Fracture' is not a class"):
        services.upload_batch_create(
            lab=personas.lab_a,
            created_by=personas.admin_a,
            uploads=[services.Upload(io.BytesIO(data), "a.dcm", len(data), label="Fracture")],
        )
    assert UploadBatch.objects.count() == 0 and stored_files(media) == []


def test_the_batch_is_queued_on_commit(personas, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(
        tasks.upload_batch_run_task, "apply_async", lambda args, **kw: sent.append(args)
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        answer = post_files(personas.admin_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient())))
    assert len(callbacks) == 1 and sent == [[answer.json()["id"]]]


def test_a_batch_runs_once_however_often_its_message_comes(personas):
    answer = post_files(personas.admin_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient())))
    batch_id = answer.json()["id"]
    assert tasks.upload_batch_run_task.run(batch_id) == "done"
    assert tasks.upload_batch_run_task.run(batch_id) == "skipped"  # redelivered: nothing twice
    assert services.upload_batch_run(batch_id=batch_id) is None
    assert tasks.upload_batch_run_task.run(batch_id + 1000) == "skipped"  # no such batch
    assert Image.objects.count() == 1 and UploadBatch.objects.get().created == 1


def test_a_running_batch_is_not_claimed_again(personas):
    answer = post_files(personas.admin_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient())))
    batch_id = answer.json()["id"]
    assert services.upload_batch_claim(batch_id=batch_id).status == "running"
    assert services.upload_batch_claim(batch_id=batch_id) is None
    assert services.upload_batch_run(batch_id=batch_id) is None
    assert Image.objects.count() == 0


def test_progress_is_saved_file_by_file(personas, monkeypatch):
    answer = post_files(
        personas.admin_a,
        personas.lab_a,
        *[(f"p{i}.dcm", dicom_bytes(gradient(seed=i))) for i in range(3)],
    )
    batch_id = answer.json()["id"]
    seen = []
    real = batches.image_ingest

    def watching(**kwargs):
        # What a client polling the status URL sees while this file is being ingested.
        seen.append(client_for(personas.viewer_a).get(answer["Location"]).json())
        return real(**kwargs)

    monkeypatch.setattr(batches, "image_ingest", watching)
    services.upload_batch_run(batch_id=batch_id)
    assert [s["status"] for s in seen] == ["running"] * 3
    assert [s["progress"]["done"] for s in seen] == [0, 1, 2]
    assert [[f["status"] for f in s["files"]] for s in seen] == [
        ["running", "queued", "queued"],
        ["created", "running", "queued"],
        ["created", "created", "running"],
    ]


def test_a_zip_expands_into_its_members(personas):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/one.dcm", dicom_bytes(gradient(seed=1)))
        zf.writestr("a/broken.dcm", b"broken")
        zf.writestr("a/two.dcm", dicom_bytes(gradient(seed=2)))
    body = upload(personas.admin_a, personas.lab_a, ("study.zip", archive.getvalue()))
    assert [(f["file"], f["status"]) for f in body["files"]] == [
        ("study.zip", "expanded"),
        ("study.zip/a/one.dcm", "created"),
        ("study.zip/a/broken.dcm", "rejected"),
        ("study.zip/a/two.dcm", "created"),
    ]
    assert body["progress"] == {"done": 1, "total": 1, "percent": 100}
    assert (body["created"], body["rejected"]) == (2, 1)
    assert (
        body["files"][2]["message"]
        == "study.zip/a/broken.dcm: is named .dcm but is not a DICOM file."
    )


def test_an_unexpected_error_in_one_file_is_reported_and_the_others_go_on(personas, monkeypatch):
    real = batches.image_ingest

    def flaky(**kwargs):
        if kwargs["filename"] == "b.dcm":
            raise RuntimeError("decoder crashed")
        return real(**kwargs)

    monkeypatch.setattr(batches, "image_ingest", flaky)
    body = upload(
        personas.admin_a,
        personas.lab_a,
        *[(f"{n}.dcm", dicom_bytes(gradient(seed=i))) for i, n in enumerate("abc")],
    )
    assert body["status"] == "done"
    assert [f["status"] for f in body["files"]] == ["created", "rejected", "created"]
    assert body["files"][1]["message"] == (
        "b.dcm: could not be ingested (RuntimeError: decoder crashed); the others went on."
    )


def test_a_batch_stopped_by_its_time_limit_fails_and_names_what_was_left(
    personas, media, monkeypatch
):
    real = batches.image_ingest

    def slow(**kwargs):
        if kwargs["filename"] == "b.dcm":
            raise SoftTimeLimitExceeded()
        return real(**kwargs)

    monkeypatch.setattr(batches, "image_ingest", slow)
    body = upload(
        personas.admin_a,
        personas.lab_a,
        *[(f"{n}.dcm", dicom_bytes(gradient(seed=i))) for i, n in enumerate("abc")],
    )
    assert body["status"] == "failed" and "SoftTimeLimitExceeded" in body["error"]
    assert [f["status"] for f in body["files"]] == ["created", "rejected", "rejected"]
    assert body["files"][2]["message"] == (
        "c.dcm: not ingested: the upload stopped before this file."
    )
    assert body["progress"]["done"] == 3 and body["finished_at"]
    assert staged(media) == []


def test_a_missing_staged_file_is_named(personas, media):
    answer = post_files(
        personas.admin_a,
        personas.lab_a,
        ("a.dcm", dicom_bytes(gradient(seed=1))),
        ("b.dcm", dicom_bytes(gradient(seed=2))),
    )
    row = UploadBatchFile.objects.get(filename="a.dcm")
    storage.delete(row.staged_name)
    body = run_batch(personas.admin_a, answer)
    assert [f["status"] for f in body["files"]] == ["rejected", "created"]
    assert body["files"][0]["message"] == (
        "a.dcm: the staged upload is missing from storage; upload it again."
    )


def test_two_batches_with_the_same_file_do_not_share_a_staged_copy(personas, media):
    data = dicom_bytes(gradient())
    first = post_files(personas.admin_a, personas.lab_a, ("a.dcm", data))
    second = post_files(personas.admin_a, personas.lab_a, ("a.dcm", data))
    names = list(UploadBatchFile.objects.values_list("staged_name", flat=True))
    assert len(set(names)) == 2
    run_batch(personas.admin_a, first)  # deletes its own staged copy only
    body = run_batch(personas.admin_a, second)
    assert body["files"][0]["status"] == "duplicate"
    assert staged(media) == []


def test_the_in_process_batch_still_works_for_commands(personas):
    good = dicom_bytes(gradient(8, 8))
    results = services.image_upload_batch(
        lab=personas.lab_a,
        uploaded_by=personas.researcher_a,
        uploads=[
            services.Upload(file=io.BytesIO(good), filename="good.dcm", size=len(good)),
            services.Upload(file=io.BytesIO(b""), filename="empty.dcm", size=0),
        ],
    )
    assert [r.status for r in results] == ["created", "rejected"]
    assert UploadBatch.objects.count() == 0
