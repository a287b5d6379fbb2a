"""The recording page draws one page of readings at a time (an EGD-CXR recording has ~1,000)."""

from __future__ import annotations

import json
import re

from django.test import Client

from apps.gaze.models import Fixation, Reading
from apps.gaze.views import READINGS_PER_PAGE
from apps.imaging.models import Image
from tests.apps.gaze.objects import gaze_recording


def _recording_with_readings(lab, n: int):
    rec = gaze_recording(lab)
    images = Image.objects.bulk_create(
        Image(
            lab=lab, key=f"img-{i:03d}", source_format="png", width=250, height=300, bits_stored=8,
            photometric_interpretation="MONOCHROME2", pixel_sha256=f"{i:064x}",
            preview_path=f"p{i}.png", thumbnail_path=f"t{i}.png",
        )
        for i in range(n)
    )  # fmt: skip
    readings = Reading.objects.bulk_create(
        Reading(
            lab=lab, session=rec.session, recording=rec, image=image, stimulus_name=image.key,
            start_ms=1000 * i, fixation_count=1,
        )
        for i, image in enumerate(images)
    )  # fmt: skip
    Fixation.objects.bulk_create(
        Fixation(
            lab=lab,
            reading=r,
            index=0,
            start_ms=0,
            duration_ms=200,
            x=10,
            y=20,
            on_image=True,
            source="vendor",
        )
        for r in readings
    )
    return rec, readings


def test_the_recording_page_paginates_its_readings(personas):
    n = 2 * READINGS_PER_PAGE + 5
    rec, readings = _recording_with_readings(personas.lab_a, n)
    client = Client()
    client.force_login(personas.viewer_a)

    def figures(page: int | None):
        url = f"/recordings/{rec.pk}/" + (f"?page={page}" if page else "")
        html = client.get(url).content.decode()
        data = re.search(r'<script id="scanpath-data" type="application/json">(.*?)</script>', html)
        return html, [f["id"] for f in json.loads(data.group(1))]

    html, first = figures(None)
    assert first == [r.pk for r in readings[:READINGS_PER_PAGE]]
    assert html.count('class="scanpath"') == READINGS_PER_PAGE
    assert f"of {n}." in html and "Page 1 of 3" in html and 'rel="next"' in html
    _, last = figures(3)
    assert last == [r.pk for r in readings[2 * READINGS_PER_PAGE :]]
    _, beyond = figures(99)  # out of range: the last page, not an error
    assert beyond == last
    seen = first + figures(2)[1] + last
    assert sorted(seen) == sorted(r.pk for r in readings)  # every reading on exactly one page


def test_a_short_recording_has_no_pager(personas):
    rec, _ = _recording_with_readings(personas.lab_a, 3)
    client = Client()
    client.force_login(personas.viewer_a)
    html = client.get(f"/recordings/{rec.pk}/").content.decode()
    assert html.count('class="scanpath"') == 3 and "readings-pager" not in html
