"""The images API: upload (202 and a batch, followed here to its end), list, filter, label,
bulk labels, files, delete, and bad input."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML

from apps.imaging.models import Image, UploadBatch
from ml import imaging
from tests.apps.imaging.batches import URL, leaves, post_files, run_batch, upload
from tests.apps.imaging.conftest import as_upload, stored_files
from tests.apps.imaging.dicoms import PHI, dicom_bytes, gradient, jpeg_bytes, make_dicom, png_bytes
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_upload_one_dicom_and_read_it_back(personas, media):
    data = dicom_bytes(gradient(20, 16))
    response = post_files(personas.researcher_a, personas.lab_a, ("s50414267.dcm", data))
    assert response.status_code == 202, response.json()
    queued = response.json()
    assert queued["status"] == "queued" and response["Location"] == queued["status_url"]
    assert queued["status_url"] == f"/api/v1/image-uploads/{queued['id']}/"
    assert queued["progress"] == {"done": 0, "total": 1, "percent": 0}
    assert [(f["file"], f["status"]) for f in queued["files"]] == [("s50414267.dcm", "queued")]
    body = run_batch(personas.researcher_a, response)
    assert body["status"] == "done" and body["created"] == 1, body
    assert body["progress"] == {"done": 1, "total": 1, "percent": 100}
    assert body["files"][0]["status"] == "created"
    assert body["files"][0]["message"] == "s50414267.dcm: stored as 's50414267'."
    client = client_for(personas.viewer_a)
    image = client.get(body["files"][0]["image"]["url"]).json()
    assert image["key"] == "s50414267" and image["width"] == 16 and image["height"] == 20
    assert image["pixel_spacing"] == [0.139, 0.139] and image["view_position"] == "PA"
    client = client_for(personas.viewer_a)
    assert client.get(f"{URL}{image['id']}/").json()["key"] == "s50414267"
    preview = client.get(image["preview_url"], HTTP_ACCEPT="image/png")
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    assert b"".join(preview.streaming_content).startswith(b"\x89PNG")
    dicom = client.get(image["dicom_url"])
    data = b"".join(dicom.streaming_content)
    assert dcmread(io.BytesIO(data)).PatientIdentityRemoved == "YES"
    for value in PHI.values():
        assert value.encode() not in data
    array = np.load(io.BytesIO(b"".join(client.get(image["array_url"]).streaming_content)))
    assert array.shape == (20, 16) and array.dtype == np.float32
    np.testing.assert_array_equal(array, imaging.read_dicom(io.BytesIO(data))[0])


def test_upload_many_png_jpeg_and_a_zip(personas):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("study/one.dcm", dicom_bytes(gradient(8, 8, seed=1)))
        zf.writestr("study/nodots", dicom_bytes(gradient(8, 8, seed=2)))
        zf.writestr("__MACOSX/._one.dcm", b"junk")
    body = upload(
        personas.admin_a,
        personas.lab_a,
        ("a.png", png_bytes(gradient(8, 8, maximum=255, dtype=np.uint8))),
        ("b.jpg", jpeg_bytes(gradient(16, 16, maximum=255, dtype=np.uint8, seed=3))),
        ("batch.zip", archive.getvalue()),
        label="Normal",
    )
    assert body["status"] == "done" and body["progress"]["total"] == 3, body
    assert [(f["file"], f["status"]) for f in body["files"]] == [
        ("a.png", "created"), ("b.jpg", "created"), ("batch.zip", "expanded"),
        ("batch.zip/study/one.dcm", "created"), ("batch.zip/study/nodots", "created"),
    ]  # fmt: skip
    zip_row = body["files"][2]
    assert zip_row["message"] == (
        "batch.zip: 2 file(s): 2 stored, 0 already in the lab, 0 rejected."
    )
    assert [f["parent"] for f in body["files"]] == [None, None, None, zip_row["id"], zip_row["id"]]
    assert (body["created"], body["duplicates"], body["rejected"]) == (4, 0, 0)
    assert sorted(Image.objects.values_list("key", flat=True)) == ["a", "b", "nodots", "one"]
    assert set(Image.objects.values_list("label", flat=True)) == {"Normal"}


def test_duplicate_upload_is_reported_and_stores_nothing(personas, media):
    data = dicom_bytes(gradient(8, 8))
    first = upload(personas.admin_a, personas.lab_a, ("a.dcm", data))
    before = stored_files(media)
    body = upload(personas.admin_a, personas.lab_a, ("b.dcm", data))
    assert (body["created"], body["duplicates"]) == (0, 1)
    result = body["files"][0]
    assert result["status"] == "duplicate" and "as 'a'; not stored twice" in result["message"]
    assert result["image"]["id"] == first["files"][0]["image"]["id"]
    assert stored_files(media) == before and Image.objects.count() == 1


def test_viewer_and_reader_cannot_upload(personas):
    for user in (personas.viewer_a, personas.reader_a):
        response = post_files(user, personas.lab_a, ("a.dcm", dicom_bytes(gradient(4, 4))))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    response = post_files(personas.admin_b, personas.lab_a, ("a.dcm", dicom_bytes(gradient(4, 4))))
    assert response.status_code == 400 and "lab" in response.json()["error"]["fields"]
    assert Image.objects.count() == 0 and UploadBatch.objects.count() == 0


def test_list_filters_search_and_labels(personas):
    for i, (name, label) in enumerate([("alpha1", "Normal"), ("alpha2", "CHF"), ("beta", "")]):
        upload(
            personas.admin_a,
            personas.lab_a,
            (f"{name}.dcm", dicom_bytes(gradient(4, 4, seed=i))),
            label=label,
        )
    client = client_for(personas.viewer_a)
    keys = lambda q: sorted(r["key"] for r in client.get(URL + q).json()["results"])  # noqa: E731
    assert keys("?label=chf") == ["alpha2"]
    assert keys("?label=none") == ["beta"]
    assert keys("?search=ALPHA") == ["alpha1", "alpha2"]
    assert keys(f"?lab={personas.lab_b.pk}") == []
    image = Image.objects.get(key="beta")
    response = client_for(personas.researcher_a).patch(
        f"{URL}{image.pk}/",
        {"label": "pneumonia", "findings": {"consolidation": True}},
        format="json",
    )
    assert response.status_code == 200 and response.json()["label"] == "Pneumonia"
    bad = client_for(personas.researcher_a).patch(
        f"{URL}{image.pk}/", {"label": "Cat"}, format="json"
    )
    assert bad.status_code == 400 and "not a class" in bad.json()["error"]["message"]
    unknown = client_for(personas.researcher_a).patch(
        f"{URL}{image.pk}/", {"width": 3}, format="json"
    )
    assert unknown.status_code == 400
    assert (
        client_for(personas.viewer_a)
        .patch(f"{URL}{image.pk}/", {"label": ""}, format="json")
        .status_code
        == 403
    )


def test_bulk_labels_csv(personas):
    upload(personas.admin_a, personas.lab_a, ("d1.dcm", dicom_bytes(gradient(4, 4))))
    sheet = b"dicom_id,Normal,CHF,pneumonia\nd1,0,0,1\nother,1,0,0\n"
    client = client_for(personas.researcher_a)
    response = client.post(
        URL + "labels/",
        {"lab": personas.lab_a.pk, "file": as_upload("master_sheet.csv", sheet)},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"rows": 2, "updated": 1, "unchanged": 0, "unknown_keys": ["other"]}
    assert Image.objects.get().label == "Pneumonia"
    bad = client.post(
        URL + "labels/",
        {"lab": personas.lab_a.pk, "file": as_upload("s.csv", b"dicom_id,CHF\nd1,maybe\n")},
        format="multipart",
    )
    assert bad.status_code == 400
    assert "s.csv: line 2" in bad.json()["error"]["message"]


def test_delete(personas, media, django_capture_on_commit_callbacks):
    upload(personas.admin_a, personas.lab_a, ("d.dcm", dicom_bytes(gradient(4, 4))))
    image = Image.objects.get()
    assert client_for(personas.viewer_a).delete(f"{URL}{image.pk}/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(personas.researcher_a).delete(f"{URL}{image.pk}/").status_code == 204
    assert Image.objects.count() == 0 and stored_files(media) == []


def test_image_classes_api(personas):
    client = client_for(personas.researcher_a)
    names = [c["name"] for c in client.get("/api/v1/image-classes/").json()["results"]]
    assert names == ["Normal", "CHF", "Pneumonia"]
    response = client.post(
        "/api/v1/image-classes/", {"lab": personas.lab_a.pk, "name": "Effusion"}, format="json"
    )
    assert response.status_code == 201
    again = client.post(
        "/api/v1/image-classes/", {"lab": personas.lab_a.pk, "name": "effusion"}, format="json"
    )
    assert again.status_code == 400


# --- The bad-input corpus (acceptance) ---------------------------------------------------------


def _truncated():
    data = dicom_bytes(gradient(64, 64))
    return data[: len(data) // 2]


def _zero_by_zero():
    return dicom_bytes(np.zeros((0, 0), np.uint16), rows=0, columns=0)


def _unsupported_syntax():
    ds = make_dicom(gradient(4, 4), phi=False)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00" * 16])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def _traversal_zip():
    good = dicom_bytes(gradient(4, 4, seed=5))
    return _zip({"fine.dcm": good, "../../etc/evil.dcm": good})


def _zip_bomb():
    return _zip(
        {"fine.dcm": dicom_bytes(gradient(4, 4, seed=6)), "bomb.dcm": b"\x00" * (20 * 1024**2)}
    )


def _png_zero_height():
    # A PNG whose IHDR claims 0 x 0 (the CRC is recomputed so only the size is wrong).
    import struct
    import zlib

    data = bytearray(png_bytes(np.zeros((2, 2), np.uint8)))
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", 0, 0)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


CORPUS = [
    ("truncated.dcm", _truncated, "truncated or damaged"),
    (
        "png-renamed.dcm",
        lambda: png_bytes(gradient(4, 4, maximum=255, dtype=np.uint8)),
        "is a PNG image but is named .dcm",
    ),
    ("traversal.zip", _traversal_zip, "unsafe path '../../etc/evil.dcm'"),
    ("bomb.zip", _zip_bomb, "possible zip bomb"),
    ("empty.dcm", lambda: b"", "is empty"),
    ("zero.dcm", _zero_by_zero, "empty image (0 x 0"),
    ("zero.png", _png_zero_height, "zero.png"),
    ("mpeg.dcm", _unsupported_syntax, "transfer syntax MPEG2"),
    ("notes.txt", lambda: b"just some text", "is not a DICOM file"),
    ("fake.zip", lambda: b"not a zip at all", "is named .zip but is not a zip"),
]


@pytest.mark.parametrize(("name", "make", "message"), CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_file_is_named_with_a_clear_message_and_leaves_nothing(
    personas, media, name, make, message
):
    response = post_files(personas.researcher_a, personas.lab_a, (name, make()))
    if name == "empty.dcm":  # refused in the request: nothing to stage, no batch
        assert response.status_code == 400, response.json()
        body = response.json()
        assert body["error"]["code"] == "invalid"
        assert body["error"]["message"] == "empty.dcm: is empty."
        assert body["results"][0]["status"] == "rejected"
        assert UploadBatch.objects.count() == 0
    else:
        body = run_batch(personas.researcher_a, response)
        assert body["status"] == "done" and (body["created"], body["rejected"]) == (0, 1), body
        [result] = leaves(body)
        assert result["status"] == "rejected" and result["image"] is None
        assert result["message"].startswith(name), result
        assert message in result["message"], result
    assert Image.objects.count() == 0
    assert stored_files(media) == []  # the staged upload too is gone


def test_file_over_the_size_limit_gets_413_and_leaves_nothing(personas, media, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = post_files(
        personas.researcher_a, personas.lab_a, ("big.dcm", dicom_bytes(gradient(32, 32)))
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"].startswith("big.dcm: is ")
    assert "over the limit of 1,000 bytes" in response.json()["error"]["message"]
    assert Image.objects.count() == 0 and stored_files(media) == []
    assert UploadBatch.objects.count() == 0


def test_a_large_file_beside_good_ones_is_named_in_the_batch(personas, media, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    body = upload(
        personas.researcher_a, personas.lab_a,
        ("big.dcm", b"x" * 1001), ("small.png", png_bytes(np.zeros((4, 4), np.uint8))),
    )  # fmt: skip
    assert [(f["file"], f["status"]) for f in body["files"]] == [
        ("big.dcm", "rejected"), ("small.png", "created"),
    ]  # fmt: skip
    assert "over the limit of 1,000 bytes" in body["files"][0]["message"]


def test_zip_over_the_total_size_cap_is_refused(personas, media, settings):
    settings.IMAGING_ZIP_MAX_BYTES = 2000
    data = _zip({f"{i}.dcm": dicom_bytes(gradient(16, 16, seed=i)) for i in range(3)})
    body = upload(personas.researcher_a, personas.lab_a, ("many.zip", data))
    assert [f["status"] for f in body["files"]] == ["rejected"]
    assert "many.zip: expands to more than 2,000 bytes" in body["files"][0]["message"]
    assert Image.objects.count() == 0 and stored_files(media) == []


def test_mixed_batch_stores_the_good_and_names_the_bad(personas):
    body = upload(
        personas.researcher_a, personas.lab_a,
        ("good.dcm", dicom_bytes(gradient(4, 4))), ("bad.dcm", b"garbage"),
    )  # fmt: skip
    assert body["status"] == "done"
    assert [(f["file"], f["status"], f["message"]) for f in body["files"]] == [
        ("good.dcm", "created", "good.dcm: stored as 'good'."),
        ("bad.dcm", "rejected", "bad.dcm: is named .dcm but is not a DICOM file."),
    ]
    assert (body["created"], body["rejected"]) == (1, 1) and Image.objects.get().key == "good"


def test_no_files_is_a_400(personas):
    response = client_for(personas.researcher_a).post(
        URL, {"lab": personas.lab_a.pk}, format="multipart"
    )
    assert response.status_code == 400 and "files" in response.json()["error"]["fields"]


def test_a_label_that_is_not_a_class_is_a_400(personas):
    response = post_files(
        personas.researcher_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient(4, 4))), label="Cat"
    )
    assert response.status_code == 400
    assert "'Cat' is not a class of Lab A" in response.json()["error"]["message"]
    assert UploadBatch.objects.count() == 0


def test_a_key_names_one_file(personas):
    body = upload(
        personas.researcher_a, personas.lab_a, ("a.dcm", dicom_bytes(gradient(4, 4))), key="k-1"
    )
    assert Image.objects.get().key == "k-1" and body["files"][0]["status"] == "created"
    two = post_files(
        personas.researcher_a, personas.lab_a,
        ("b.dcm", dicom_bytes(gradient(4, 4, seed=1))),
        ("c.dcm", dicom_bytes(gradient(4, 4, seed=2))), key="k-2",
    )  # fmt: skip
    assert two.status_code == 400 and "key" in two.json()["error"]["fields"]
