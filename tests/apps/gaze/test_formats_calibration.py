"""A Tobii Pro Lab export whose only unmatched stimulus is its calibration screen parses to
``done``: the screen is recognised and reported in the quality report, never an unmatched image."""

from __future__ import annotations

import json

import pytest

from apps.gaze import services
from apps.gaze.models import Reading, Recording
from ml.synthetic.writers import write_tobii_pro_lab_tsv
from ml.synthetic.writers.tobii import CALIBRATION_STIMULUS
from tests.apps.gaze.conftest import simulated
from tests.conftest import client_for
from tests.shared_formats import FORMATS_DIR, needs

REAL_TOBII = FORMATS_DIR / "tobii_pro_lab_tsv/DEV_cemGr_IVT-normal_Data_export_first300.tsv"


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr(services, "_enqueue", ids.append)
    return ids


def post(user, session, path, options=None):
    with open(path, "rb") as fh:
        body = {"session": session.pk, "files": [fh]}
        if options is not None:
            body["options"] = json.dumps(options)
        return client_for(user).post("/api/v1/recordings/", body, format="multipart")


def test_tobii_image_and_calibration_screen(personas, session, images, phantoms, tmp_path, queued):
    paths = write_tobii_pro_lab_tsv(simulated(phantoms[:1], 120), tmp_path / "e.tsv",
                                    calibration=True)  # fmt: skip
    assert CALIBRATION_STIMULUS in paths["tsv"].read_text(encoding="utf-8")
    response = post(personas.researcher_a, session, paths["tsv"])
    assert response.status_code == 201, response.json()
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "done", rec.errors
    assert rec.unmatched_stimuli == []
    [screen] = rec.quality["calibration_screens"]
    assert screen["name"] == CALIBRATION_STIMULUS and screen["samples"] > 0
    assert rec.quality["dropped"]["by_reason"] == {"calibration screen": screen["fixations"]}
    assert [r.image for r in Reading.objects.filter(recording=rec)] == [images[0]]


@needs(FORMATS_DIR)
def test_real_tobii_export_naming_only_its_calibration(personas, session, images, queued):
    """The real Pro Lab export names no image, only its calibration screen: uploaded with the
    image shown (``image_key``), it is a reading of that image, its calibration reported."""
    response = post(personas.researcher_a, session, REAL_TOBII, {"image_key": images[0].key})
    assert response.status_code == 201, response.json()
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "done", rec.errors
    assert rec.unmatched_stimuli == []
    assert [c["name"] for c in rec.quality["calibration_screens"]] == [CALIBRATION_STIMULUS]
    [reading] = Reading.objects.filter(recording=rec)
    assert reading.image == images[0] and reading.fixation_count > 0


NEON = FORMATS_DIR / "pupil_labs_neon_cloud"


@needs(FORMATS_DIR)
def test_neon_marker_mapper_gaze_with_its_sections_csv(personas, session, images, queued):
    """Pupil Cloud's sections.csv goes with the Marker Mapper gaze.csv as its companion (it was
    refused, with a message asking for exactly this): its sections, named by their start event,
    are the stimuli. Alone it is refused naming the way out."""
    images[0].key = "T1encodeBegin"  # the export's section starts with this event
    images[0].save(update_fields=["key"])
    client = client_for(personas.researcher_a)
    gaze, sections = (
        NEON / "DEV_markermapper_gaze_first300.csv",
        NEON / "DEV_markermapper_sections.csv",
    )
    with open(gaze, "rb") as g, open(sections, "rb") as s:
        body = {"session": session.pk, "files": [g, s]}
        response = client.post("/api/v1/recordings/", body, format="multipart")
    assert response.status_code == 201, response.json()
    rec = Recording.objects.get()
    assert rec.format == "neon" and rec.companion_name == sections.name
    services.recording_parse(recording_id=queued[0])
    rec.refresh_from_db()
    assert rec.status == "done", rec.errors
    assert [r.image for r in Reading.objects.filter(recording=rec)] == [images[0]]

    alone = post(personas.researcher_a, session, sections)
    assert alone.status_code == 400
    assert "give sections.csv with it" in alone.json()["error"]["message"]
    assert Recording.objects.count() == 1
