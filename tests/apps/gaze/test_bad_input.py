"""Bad input: a clear 4xx naming the file (and line or column), or a parse report naming the
problem; never partial rows."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.gaze import services
from apps.gaze.models import Fixation, Reading, Recording
from apps.gaze.services import parse
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import simulated
from tests.conftest import client_for

GENERIC = {"time_unit": "ms", "space": "screen_px"}
PUPIL_CAMERA_FIXATIONS = (
    b"id,start_timestamp,duration,start_frame_index,end_frame_index,norm_pos_x,norm_pos_y,"
    b"dispersion,confidence,method\n1,100.5,250.0,10,17,0.5,0.4,1.1,0.95,3d gaze\n"
)
PUPIL_SURFACE_FIXATIONS_BAD = (
    b"world_timestamp,world_index,fixation_id,start_timestamp,duration,dispersion,norm_pos_x,"
    b"norm_pos_y,x_scaled,y_scaled,on_surf\n"
    b"100.50,10,1,100.5,250.0,1.1,0.5,0.4,175,172,True\n"
    b"100.53,11,1,100.5,260.0,1.1,0.5,0.4,175,172,True\n"
)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr(services, "_enqueue", ids.append)
    return ids


def post(user, session, name: str, data: bytes, options: dict | None = None):
    body = {"session": session.pk, "files": [SimpleUploadedFile(name, data)]}
    if options is not None:
        body["options"] = json.dumps(options)
    return client_for(user).post("/api/v1/recordings/", body, format="multipart")


def nothing_stored() -> bool:
    return not Reading.objects.exists() and not Fixation.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "options", "match"),
    [
        ("empty.csv", b"", None, "empty"),
        ("junk.bin", b"\x00\x01\x02binary junk\xff" * 50, None, "binary"),
        ("notes.txt", b"hello world\n", None, "unrecognised"),
        ("gaze.csv", b"time,x,y\n0,1,2\n", None, "time unit and coordinate space"),
        ("master_sheet.csv", b"dicom_id,image_top_pad\nabc,0\n", None, "not gaze data"),
        ("x.edf", b"SR_RESEARCH" + b"\x00" * 100, None, "EDF"),
        ("gaze.csv", b"time,x,y\n0,1,2\n", {**GENERIC, "colour": "red"}, "unknown option"),
        (
            "gaze.csv",
            b"section id,recording id,timestamp [ns],gaze x [px],gaze y [px],worn\n"
            b"s,r,1700000000000000000,800.5,600.2,1\n",
            None,
            "scene-camera pixels",
        ),
    ],
)
def test_refused_at_upload_with_400(personas, session, queued, name, data, options, match):
    response = post(personas.researcher_a, session, name, data, options)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert match.lower() in error["message"].lower()
    if match not in ("unknown option",):
        assert name in error["message"]
    assert not Recording.objects.exists() and not queued


@pytest.mark.parametrize(
    ("data", "options", "match"),
    [
        # wrong columns: the declared x column is not in the file
        (b"time,gx,gy\n0,1,2\n", {**GENERIC, "image_key": "k"}, "'x'"),
        # time running backwards, with its line
        (b"time,x,y\n0,1,2\n5,1,2\n3,1,2\n", {**GENERIC, "image_key": "k"}, "line 4"),
        # mixed formats: Tobii-like rows under a generic header
        (b"time,x,y\n0,1,2\n1\t2\t3\tEye Tracker\n", {**GENERIC, "image_key": "k"}, "line 3"),
        # a line longer than any real export's
        (b"time,x,y\n" + b"1" * (1 << 21) + b"\n", {**GENERIC, "image_key": "k"}, "longer"),
        # no image named
        (b"time,x,y\n0,1,2\n10,1,2\n20,1,2\n", GENERIC, "image_key"),
        # one fixation whose rows (one per world frame) disagree on its duration
        (PUPIL_SURFACE_FIXATIONS_BAD, {"image_key": "k"}, "line 3, column 'duration'"),
    ],
)
def test_parse_failures_are_reported_without_rows(personas, session, queued, data, options, match):
    response = post(personas.researcher_a, session, "upload.csv", data, options)
    assert response.status_code == 201, response.json()
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "failed" and rec.progress == 100
    assert match in rec.errors[0], rec.errors
    assert "upload.csv" in rec.errors[0]  # the uploaded name, never the storage path
    assert nothing_stored()
    status = client_for(personas.viewer_a).get(f"/api/v1/recordings/{rec.pk}/status/").json()
    assert status["status"] == "failed" and status["errors"] == rec.errors


def test_world_camera_positions_are_refused_with_the_reason(personas, session, images, queued):
    # Pupil Player's fixations.csv (no surface): positions move with the wearer's head.
    response = post(
        personas.researcher_a, session, "fixations.csv", PUPIL_CAMERA_FIXATIONS,
        {"image_key": images[0].key},
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "failed" and "surface tracking" in rec.errors[0], rec.errors
    assert nothing_stored()


def test_unknown_stimulus_names_are_listed(personas, session, images, phantoms, queued, tmp_path):
    rs = simulated(phantoms[:1], 1000, n_fix=6)
    paths = write_eyelink_asc(rs, tmp_path / "a.asc")
    text = paths["asc"].read_text().replace(rs[0].image_key, "nobody-knows-me")
    response = post(personas.researcher_a, session, "a.asc", text.encode())
    assert response.status_code == 201
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "failed"
    assert rec.unmatched_stimuli == ["images/nobody-knows-me.png"]
    assert "nobody-knows-me" in rec.errors[0]
    assert nothing_stored()


def test_some_names_unmatched_still_stores_the_rest(
    personas, session, images, phantoms, queued, tmp_path
):
    rs = simulated(phantoms[:2], 1000, n_fix=6)
    paths = write_eyelink_asc(rs, tmp_path / "a.asc")
    text = paths["asc"].read_text().replace(rs[1].image_key, "stranger")
    post(personas.researcher_a, session, "a.asc", text.encode())
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "done" and rec.unmatched_stimuli == ["images/stranger.png"]
    assert Reading.objects.count() == 1


def test_a_failure_while_storing_leaves_no_rows(
    personas, session, images, phantoms, queued, tmp_path, settings, monkeypatch
):
    settings.GAZE_FIXATION_BATCH_SIZE = 4
    paths = write_eyelink_asc(simulated(phantoms[:2], 1000, n_fix=8), tmp_path / "a.asc")
    post(personas.researcher_a, session, "a.asc", paths["asc"].read_bytes())
    original = parse._fixation_rows

    def flaky(lab_id, readings):
        # Fails part-way through the rows, after some have been written, on every backend
        # (COPY on PostgreSQL, bulk_create in batches of 4 elsewhere).
        for n, row in enumerate(original(lab_id, readings)):
            if n == 9:
                raise OSError("disk full")
            yield row

    monkeypatch.setattr(parse, "_fixation_rows", flaky)
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "failed" and "disk full" in rec.errors[0]
    assert nothing_stored()


def test_parse_is_idempotent(personas, session, images, phantoms, queued, tmp_path):
    paths = write_eyelink_asc(simulated(phantoms[:1], 1000, n_fix=6), tmp_path / "a.asc")
    post(personas.researcher_a, session, "a.asc", paths["asc"].read_bytes())
    assert services.recording_parse(recording_id=queued[0]).status == "done"
    n = Fixation.objects.count()
    assert services.recording_parse(recording_id=queued[0]) is None  # a second delivery
    assert Fixation.objects.count() == n
    # Uploading the same bytes again returns the same recording; nothing is queued.
    again = post(personas.researcher_a, session, "copy.asc", paths["asc"].read_bytes())
    assert again.status_code == 201 and again.json()[0]["id"] == queued[0]
    assert len(queued) == 1


def test_uploads_are_refused_to_whom_it_does_not_belong(personas, session, reader, queued):
    data = b"time,x,y\n0,1,2\n"
    assert post(personas.viewer_a, session, "g.csv", data, GENERIC).status_code == 403
    assert post(personas.admin_b, session, "g.csv", data, GENERIC).status_code == 400  # unseen
    other = services.reading_session_create(
        lab=personas.lab_a,
        reader=services.reader_create(lab=personas.lab_a, code="R2"),
        created_by=personas.researcher_a,
    )
    # A reader uploads to their own session, not to another reader's.
    assert post(personas.reader_a, other, "g.csv", data, GENERIC).status_code == 403
    assert post(personas.reader_a, session, "g.csv", data, GENERIC).status_code == 201
    assert Recording.objects.count() == 1


def test_reader_creates_only_own_sessions(personas, reader):
    body = {"lab": personas.lab_a.pk, "reader": reader.pk, "name": "mine"}
    client = client_for(personas.reader_a)
    assert client.post("/api/v1/sessions/", body, format="json").status_code == 201
    other = services.reader_create(lab=personas.lab_a, code="R2")
    body["reader"] = other.pk
    response = client.post("/api/v1/sessions/", body, format="json")
    assert response.status_code == 403
    assert client.post("/api/v1/readers/", {"lab": personas.lab_a.pk, "code": "X"},
                       format="json").status_code == 403  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image_placement": "rect"}, "image_rect_width"),
        ({"screen_width_mm": 500}, "screen_height_mm"),
        ({"fit_padding_px": 600}, "fit_padding_px"),
        ({"image_placement": "sideways"}, "image_placement"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_session_bad_geometry_is_a_400_naming_the_field(personas, reader, body, field):
    response = client_for(personas.researcher_a).post(
        "/api/v1/sessions/", {"lab": personas.lab_a.pk, "reader": reader.pk, **body},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_upload_session_field_is_required(personas):
    client = client_for(personas.researcher_a)
    data = {"files": [SimpleUploadedFile("a.csv", b"x")]}
    response = client.post("/api/v1/recordings/", data, format="multipart")
    assert response.status_code == 400
    assert "session" in response.json()["error"]["fields"]


def test_stream_of_upload_uses_no_storage_path_in_messages(personas, session, queued):
    data = io.BytesIO(b"time,x,y\n0,1,2\n")
    [rec] = services.recording_upload(
        session=session, uploaded_by=None,
        uploads=[services.Upload(file=data, filename="mine.csv", size=15)],
        options={**GENERIC, "image_key": "nothing-like-it"}, enqueue=False,
    )  # fmt: skip
    rec = services.recording_parse(recording_id=rec.pk)
    assert rec.status == "failed" and "media" not in rec.errors[0]
