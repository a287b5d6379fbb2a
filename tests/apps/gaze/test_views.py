"""The sessions, session and recording pages: members see them, other labs get 404."""

from __future__ import annotations

from django.test import Client

from apps.gaze import services
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import simulated


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages(personas, images, session, phantoms, tmp_path):
    paths = write_eyelink_asc(simulated(phantoms[:1], 1000, n_fix=6), tmp_path / "a.asc")
    [rec] = services.recording_upload(
        session=session, uploaded_by=None, uploads=[services.tmp_upload(paths["asc"])],
        enqueue=False,
    )  # fmt: skip
    services.recording_parse(recording_id=rec.pk)
    viewer = login(personas.viewer_a)
    page = viewer.get("/sessions/").content.decode()
    assert "S1" in page and "Start a session" not in page  # viewers only read
    page = viewer.get(f"/sessions/{session.pk}/").content.decode()
    assert "a.asc" in page and "gaze-dropzone" not in page
    page = viewer.get(f"/recordings/{rec.pk}/").content.decode()
    assert "Quality report" in page and "scanpath-data" in page and "plotly.min.js" in page
    image = viewer.get(f"/images/{images[0].pk}/").content.decode()
    assert 'id="image-readings"' in image
    reader = login(personas.reader_a)  # the session's reader uploads to it
    assert "gaze-dropzone" in reader.get(f"/sessions/{session.pk}/").content.decode()
    other = login(personas.admin_b)
    assert other.get(f"/sessions/{session.pk}/").status_code == 404
    assert other.get(f"/recordings/{rec.pk}/").status_code == 404


def test_researcher_starts_a_session_from_the_page(personas, reader):
    client = login(personas.researcher_a)
    response = client.post("/sessions/", {
        "reader": reader.pk, "name": "Afternoon", "screen_width_px": 1920,
        "screen_height_px": 1080, "image_placement": "fit", "fixation_detection": "auto",
    })  # fmt: skip
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200
    assert login(personas.viewer_a).post("/sessions/", {}).status_code == 403
