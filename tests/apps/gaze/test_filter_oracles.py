"""Filters by id give one answer for another lab's ids and for ids that exist nowhere (an empty
list), and a 400 naming the field for ids no database column can hold (never a 500)."""

from __future__ import annotations

import pytest

from tests.apps.gaze.conftest import ingest_phantoms
from tests.apps.gaze.objects import gaze_fixation
from tests.conftest import client_for

HUGE = str(2**70)

# route -> the id filters it takes, each with the attribute of lab B's fixation that names one
FILTERS = {
    "/api/v1/images/": {"lab": "lab_id"},
    "/api/v1/image-classes/": {"lab": "lab_id"},
    "/api/v1/image-uploads/": {"lab": "lab_id"},
    "/api/v1/readers/": {"lab": "lab_id"},
    "/api/v1/sessions/": {"lab": "lab_id", "reader": "reading.session.reader_id"},
    "/api/v1/recordings/": {"lab": "lab_id", "session": "reading.session_id"},
    "/api/v1/readings/": {
        "lab": "lab_id", "session": "reading.session_id", "recording": "reading.recording_id",
        "image": "reading.image_id", "reader": "reading.session.reader_id",
    },
    "/api/v1/fixations/": {
        "lab": "lab_id", "reading": "reading_id", "session": "reading.session_id",
        "recording": "reading.recording_id", "image": "reading.image_id",
    },
    "/api/v1/saliency-maps/": {"lab": "lab_id", "reading": "reading_id"},
    "/api/v1/memberships/": {"lab": "lab_id"},
}  # fmt: skip


def _attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.fixture
def foreign(personas, phantoms, tmp_path):
    """A fixation (with its reading, recording, session, reader and image) of lab B."""
    [image] = ingest_phantoms(personas.lab_b, personas.admin_b, phantoms[:1], tmp_path)
    return gaze_fixation(personas.lab_b, image, personas.admin_b)


@pytest.mark.parametrize(
    "route, name", [(r, n) for r, names in FILTERS.items() for n in names], ids=str
)
def test_another_labs_id_answers_like_an_id_that_exists_nowhere(foreign, personas, route, name):
    client = client_for(personas.admin_a)
    theirs = _attr(foreign, FILTERS[route][name])
    other_lab = client.get(route, {name: theirs})
    nowhere = client.get(route, {name: 2**62})
    assert other_lab.status_code == nowhere.status_code == 200, (other_lab.content, nowhere.content)
    assert other_lab.json() == nowhere.json()
    assert other_lab.json()["count"] == 0
    for bad in (HUGE, "-1", "0", "abc", "1.5"):
        response = client.get(route, {name: bad})
        assert response.status_code == 400, (bad, response.content)
        assert name in response.json()["error"]["fields"]
