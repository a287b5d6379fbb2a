"""Session and recording lists report their counts from one query per page, not one per row."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.gaze import services
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import simulated
from tests.conftest import client_for


def _upload(session, phantoms, tmp_path, name):
    paths = write_eyelink_asc(simulated(phantoms, 500, n_fix=4), tmp_path / name)
    [rec] = services.recording_upload(
        session=session, uploaded_by=None, uploads=[services.tmp_upload(paths["asc"])],
        enqueue=False,
    )  # fmt: skip
    return services.recording_parse(recording_id=rec.pk)


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def test_counts_without_a_query_per_row(personas, images, reader, session, phantoms, tmp_path):
    client = client_for(personas.researcher_a)
    rec = _upload(session, phantoms, tmp_path, "a.asc")
    n_sessions_1, body = _queries(client, "/api/v1/sessions/?ordering=name")
    n_recordings_1, recs = _queries(client, "/api/v1/recordings/?ordering=original_name")
    assert [s["recording_count"] for s in body["results"]] == [1]
    assert [r["reading_count"] for r in recs["results"]] == [3]
    # More sessions and recordings, the same number of queries.
    for i in range(3):
        other = services.reading_session_create(
            lab=personas.lab_a, reader=reader, created_by=personas.researcher_a, name=f"S{i + 2}"
        )
        _upload(other, phantoms[: i + 1], tmp_path, f"b{i}.asc")
    _upload(session, phantoms[:2], tmp_path, "c.asc")  # images already read: left out
    n_sessions_4, body = _queries(client, "/api/v1/sessions/?ordering=name")
    n_recordings_5, recs = _queries(client, "/api/v1/recordings/?ordering=original_name")
    assert n_sessions_4 == n_sessions_1 and n_recordings_5 == n_recordings_1
    counts = {s["name"]: s["recording_count"] for s in body["results"]}
    assert counts == {session.name: 2, "S2": 1, "S3": 1, "S4": 1}
    assert {r["original_name"]: r["reading_count"] for r in recs["results"]} == {
        "a.asc": 3, "b0.asc": 1, "b1.asc": 2, "b2.asc": 3, "c.asc": 0,
    }  # fmt: skip
    # A single object (no annotation on a freshly created one) counts too.
    detail = client.get(f"/api/v1/recordings/{rec.pk}/").json()
    assert detail["reading_count"] == 3
