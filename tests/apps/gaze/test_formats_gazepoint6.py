"""Gazepoint Analysis 6.x reduced exports through the API: detected from the content, read with
the image the upload names (``image_key``: the API passes it through to the parse), stored with
one fixation per true fixation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.gaze import services
from apps.gaze.models import Reading, Recording
from ml.synthetic.writers import write_gazepoint_csv
from tests.apps.gaze.conftest import simulated
from tests.conftest import client_for


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr(services, "_enqueue", ids.append)
    return ids


def post(user, session, path, options=None):
    with path.open("rb") as fh:
        body = {"session": session.pk, "files": [fh]}
        if options is not None:
            body["options"] = json.dumps(options)
        return client_for(user).post("/api/v1/recordings/", body, format="multipart")


@pytest.mark.parametrize("name", ["all_gaze", "fixations"])
def test_reduced_export_with_image_key(personas, session, images, phantoms, tmp_path, queued, name):
    paths = write_gazepoint_csv(simulated(phantoms[:1], 60), tmp_path / "gp6", reduced=True)
    assert paths[name].read_text().splitlines()[0] == "TIME,TIMETICK,FPOGX,FPOGY,FPOGD,FPOGV,"
    key = images[0].key
    response = post(personas.researcher_a, session, paths[name], {"image_key": key})
    assert response.status_code == 201, response.json()
    [made] = response.json()
    assert made["format"] == "gazepoint" and made["options"] == {"image_key": key}
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "done", rec.errors
    assert rec.unmatched_stimuli == []
    assert rec.quality["format"] == f"gazepoint_{name}"
    [reading] = Reading.objects.filter(recording=rec)
    truth = json.loads(paths["truth"].read_text())["readings"][0]["fixations"]
    assert reading.image == images[0] and reading.fixation_count == len(truth)
    rows = list(reading.fixations.order_by("index"))
    assert len(rows) == len(truth)
    # The session's screen is the synthetic one (1920 x 1080): positions come back to the truth.
    np.testing.assert_allclose([f.x for f in rows], [t["image_x"] for t in truth], atol=0.5)
    np.testing.assert_allclose([f.y for f in rows], [t["image_y"] for t in truth], atol=0.5)


def test_reduced_export_without_image_key_fails_saying_so(
    personas, session, images, phantoms, tmp_path, queued
):
    paths = write_gazepoint_csv(simulated(phantoms[:1], 60), tmp_path / "gp6", reduced=True)
    assert post(personas.researcher_a, session, paths["fixations"]).status_code == 201
    services.recording_parse(recording_id=queued[0])
    rec = Recording.objects.get()
    assert rec.status == "failed" and "image_key" in rec.errors[0]
    assert not Reading.objects.exists()
