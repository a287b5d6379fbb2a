"""The session and recording pages' actions, with the API's roles: edit a session's geometry,
tracker and fixation detection (researchers, admins and the session's own reader), re-parse its
recordings, delete a session or a recording (the confirmation says what goes with it), and use
readings for training or leave them out, one by one or by grade (researchers and admins).
Viewers see no button and get 403; another lab's objects are 404; bad input shows on its field
with 400 and changes nothing."""

from __future__ import annotations

import io
import itertools
import re
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.gaze import services
from apps.gaze.models import (
    Fixation,
    Reader,
    Reading,
    ReadingSession,
    Recording,
    SaliencyMap,
)
from apps.imaging.models import Image

_made = itertools.count()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _fields(obj) -> dict:
    obj = type(obj).objects.get(pk=obj.pk)
    return {f.name: getattr(obj, f.name) for f in obj._meta.concrete_fields}


def _images(lab, n: int) -> list[Image]:
    return Image.objects.bulk_create(
        Image(
            lab=lab, key=f"img-{i:03d}", source_format="png", width=250, height=300,
            bits_stored=8, photometric_interpretation="MONOCHROME2",
            pixel_sha256=f"{lab.pk:032x}{i:032x}", preview_path=f"p{i}.png",
            thumbnail_path=f"t{i}.png",
        )
        for i in (next(_made) for _ in range(n))
    )  # fmt: skip


def _recording(session: ReadingSession, name: str = "a.csv", status: str = "done") -> Recording:
    data = f"time,x,y\n0,10,10\n10,11,{next(_made)}\n".encode()
    [rec] = services.recording_upload(
        session=session, uploaded_by=None, enqueue=False,
        uploads=[services.Upload(file=io.BytesIO(data), filename=name, size=len(data))],
        options={"time_unit": "ms", "space": "image_px", "image_key": "img"},
    )  # fmt: skip
    Recording.objects.filter(pk=rec.pk).update(status=status, progress=100)
    rec.refresh_from_db()
    return rec


def _readings(rec: Recording, grades: list[str], fixations: int = 3) -> list[Reading]:
    """One reading per grade, each with ``fixations`` fixations and its own saliency map."""
    out = []
    for image, grade in zip(_images(rec.lab, len(grades)), grades, strict=True):
        reading = Reading.objects.create(
            lab=rec.lab, session=rec.session, recording=rec, image=image,
            stimulus_name=image.key, grade=grade, fixation_count=fixations,
            use_for_training=grade != "poor",
        )  # fmt: skip
        Fixation.objects.bulk_create(
            Fixation(lab=rec.lab, reading=reading, index=k, duration_ms=200.0, x=1.0, y=2.0,
                     on_image=True, source="vendor")
            for k in range(fixations)
        )  # fmt: skip
        _saliency(reading=reading, image=image, kind="reading")
        out.append(reading)
    return out


def _saliency(*, image: Image, kind: str, reading: Reading | None = None) -> SaliencyMap:
    return SaliencyMap.objects.create(
        lab=image.lab, kind=kind, reading=reading, image=image, target_height=8, target_width=8,
        sigma_mode="geometry", cache_key=f"{next(_made):064x}", file_path="none.npy",
    )  # fmt: skip


@pytest.fixture
def reader(personas) -> Reader:
    return services.reader_create(lab=personas.lab_a, code="R1", user=personas.reader_a)


@pytest.fixture
def session(personas, reader) -> ReadingSession:
    return services.reading_session_create(
        lab=personas.lab_a, reader=reader, created_by=personas.researcher_a, name="S1",
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The recordings whose parse was queued (no worker here)."""
    ids: list[int] = []
    monkeypatch.setattr(services, "_enqueue", ids.append)
    return ids


EDIT = {
    "name": "S1", "date": "", "notes": "", "tracker_make": "", "tracker_model": "",
    "sampling_rate_hz": "", "screen_width_px": "1920", "screen_height_px": "1080",
    "screen_width_mm": "531", "screen_height_mm": "299", "viewing_distance_mm": "650",
    "image_placement": "auto", "fit_padding_px": "0", "image_rect_left": "",
    "image_rect_top": "", "image_rect_width": "", "image_rect_height": "",
    "fixation_detection": "auto", "detection_velocity_deg_s": "",
    "detection_dispersion_deg": "", "detection_min_duration_ms": "",
}  # fmt: skip


def _edit(session: ReadingSession, **changes: str) -> dict:
    """The edit form's body as the page fills it, with ``changes``."""
    return EDIT | {"reader": str(session.reader_id)} | changes


def _error(html: str, field: str) -> str:
    match = re.search(rf'<div class="error" id="id_{field}_error"><p>(.*?)</p>', html)
    assert match, f"no error on {field}"
    return unescape(match.group(1))


# --- Edit -------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["researcher_a", "admin_a", "reader_a"])
def test_edit_the_geometry_then_the_page_offers_a_reparse(personas, session, who):
    _recording(session)
    client = login(getattr(personas, who))
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert 'id="session-edit-form"' in page and 'id="id_viewing_distance_mm"' in page
    body = _edit(session, viewing_distance_mm="700", tracker_make="SR Research",
                 fixation_detection="idt", detection_dispersion_deg="1.5")  # fmt: skip
    response = client.post(f"/sessions/{session.pk}/edit/", body)
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{session.pk}/?reparse=offer#reparse"
    session.refresh_from_db()
    assert (session.viewing_distance_mm, session.tracker_make, session.fixation_detection,
            session.detection_dispersion_deg) == (700.0, "SR Research", "idt", 1.5)  # fmt: skip
    page = client.get(response["Location"]).content.decode()
    assert 'id="reparse-offer"' in page and "Re-parse 1 recording" in page


def test_a_change_the_parse_does_not_read_offers_no_reparse(personas, session):
    _recording(session)
    client = login(personas.researcher_a)
    response = client.post(f"/sessions/{session.pk}/edit/", _edit(session, name="Morning"))
    assert response["Location"] == f"/sessions/{session.pk}/"
    assert ReadingSession.objects.get(pk=session.pk).name == "Morning"
    assert 'id="reparse-offer"' not in client.get(response["Location"]).content.decode()


def test_only_researchers_and_admins_change_the_reader(personas, session, reader):
    other = services.reader_create(lab=personas.lab_a, code="R2")
    own = login(personas.reader_a)
    assert 'id="id_reader"' not in own.get(f"/sessions/{session.pk}/").content.decode()
    own.post(f"/sessions/{session.pk}/edit/", EDIT | {"reader": other.pk})  # ignored
    assert ReadingSession.objects.get(pk=session.pk).reader == reader
    client = login(personas.researcher_a)
    assert 'id="id_reader"' in client.get(f"/sessions/{session.pk}/").content.decode()
    response = client.post(f"/sessions/{session.pk}/edit/", EDIT | {"reader": other.pk})
    assert response.status_code == 302
    assert ReadingSession.objects.get(pk=session.pk).reader == other


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"screen_width_px": "0"}, "screen_width_px", "greater than or equal to 1"),
        ({"screen_width_px": "abc"}, "screen_width_px", "Enter a whole number."),
        ({"viewing_distance_mm": "-5"}, "viewing_distance_mm", "greater than or equal to 0"),
        ({"viewing_distance_mm": "inf"}, "viewing_distance_mm", "Enter a number."),
        ({"viewing_distance_mm": "0"}, "viewing_distance_mm", "Must be above zero."),
        ({"screen_height_mm": ""}, "screen_height_mm", "Give both screen sizes in mm"),
        ({"image_placement": "rect"}, "image_rect_width", "needs left, top, width and height"),
        ({"fit_padding_px": "600"}, "fit_padding_px", "leaves no room"),
        ({"fixation_detection": "magic"}, "fixation_detection", "Select a valid choice"),
        ({"date": "2024-13-45"}, "date", "Enter a valid date."),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
    ],
)
def test_bad_geometry_is_shown_on_its_field_and_changes_nothing(
    personas, session, changes, field, message
):
    before = _fields(session)
    client = login(personas.researcher_a)
    response = client.post(f"/sessions/{session.pk}/edit/", _edit(session, **changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in _error(html, field)
    assert '<details class="edit-session" id="edit-session" open>' in html
    # The page describes the session as stored, not as the refused form had it.
    assert "at 650.0 mm" in html
    assert _fields(session) == before


def test_viewers_get_no_form_and_403(personas, session):
    rec = _recording(session)
    client = login(personas.viewer_a)
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    for absent in ("session-edit-form", "session-delete", "session-reparse", "Re-parse",
                   "Delete", "bulk-training-form"):  # fmt: skip
        assert absent not in page, absent
    before, rec_before = _fields(session), _fields(rec)
    for url, body in [
        (f"/sessions/{session.pk}/edit/", EDIT | {"name": "changed"}),
        (f"/sessions/{session.pk}/reparse/", {}),
        (f"/sessions/{session.pk}/delete/", {}),
        (f"/sessions/{session.pk}/training/", {"grade": "good", "use_for_training": "0"}),
        (f"/recordings/{rec.pk}/reparse/", {}),
        (f"/recordings/{rec.pk}/delete/", {}),
    ]:
        assert client.post(url, body).status_code == 403, url
    assert _fields(session) == before and _fields(rec) == rec_before


def test_a_reader_may_not_change_another_readers_session(personas):
    other = services.reader_create(lab=personas.lab_a, code="R2")
    theirs = ReadingSession.objects.create(lab=personas.lab_a, reader=other, name="T")
    client = login(personas.reader_a)
    assert "session-edit-form" not in client.get(f"/sessions/{theirs.pk}/").content.decode()
    assert client.post(f"/sessions/{theirs.pk}/edit/", EDIT).status_code == 403
    assert client.post(f"/sessions/{theirs.pk}/delete/").status_code == 403
    assert ReadingSession.objects.filter(pk=theirs.pk).exists()


def test_another_labs_sessions_and_recordings_are_404(personas, session):
    rec = _recording(session)
    [reading] = _readings(rec, ["good"])
    client = login(personas.admin_b)
    before, rec_before = _fields(session), _fields(rec)
    for url in (f"/sessions/{session.pk}/", f"/recordings/{rec.pk}/"):
        assert client.get(url).status_code == 404
    for url, body in [
        (f"/sessions/{session.pk}/edit/", EDIT | {"name": "changed"}),
        (f"/sessions/{session.pk}/reparse/", {}),
        (f"/sessions/{session.pk}/delete/", {}),
        (f"/sessions/{session.pk}/training/", {"grade": "good", "use_for_training": "0"}),
        (f"/recordings/{rec.pk}/reparse/", {}),
        (f"/recordings/{rec.pk}/delete/", {}),
        (f"/readings/{reading.pk}/training/", {"use_for_training": "0"}),
    ]:
        assert client.post(url, body).status_code == 404, url
    assert _fields(session) == before and _fields(rec) == rec_before
    assert Reading.objects.get(pk=reading.pk).use_for_training


# --- Re-parse ---------------------------------------------------------------------------------
def test_reparse_queues_every_recording_and_the_page_polls_them(personas, session, queued):
    done = _recording(session, "a.csv")
    failed = _recording(session, "b.csv", status="failed")
    busy = _recording(session, "c.csv", status="parsing")
    client = login(personas.reader_a)  # the session's own reader
    response = client.post(f"/sessions/{session.pk}/reparse/")
    assert response.status_code == 302
    assert sorted(queued) == sorted([done.pk, failed.pk])  # the running parse is left alone
    assert Recording.objects.get(pk=done.pk).status == "queued"
    assert Recording.objects.get(pk=busy.pk).status == "parsing"
    page = client.get(response["Location"]).content.decode()
    assert "2 recordings queued for a new parse." in page
    assert "1 recording skipped: a parse of its is queued or running already." in page
    # Each parse in flight is polled by the page's script, with a progress bar.
    assert page.count("parse-watch") == 3 and "gaze/parse-status.js" in page
    assert page.count('<progress max="100"') == 3


def test_reparse_one_recording(personas, session, queued):
    rec = _recording(session)
    client = login(personas.researcher_a)
    response = client.post(f"/recordings/{rec.pk}/reparse/")
    assert response["Location"] == f"/recordings/{rec.pk}/" and queued == [rec.pk]
    page = client.get(f"/recordings/{rec.pk}/").content.decode()
    assert "is queued for a new parse" in page and "parse-watch" in page
    # Asked again while queued: refused with the reason, not an error page.
    response = client.post(f"/recordings/{rec.pk}/reparse/", {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == f"/recordings/{rec.pk}/"
    assert "being parsed already" in client.get(response["Location"]).content.decode()
    assert queued == [rec.pk]


# --- Delete -----------------------------------------------------------------------------------
def test_delete_a_session_says_what_goes_with_it(personas, session):
    first, second = _recording(session, "a.csv"), _recording(session, "b.csv")
    readings = _readings(first, ["good", "poor"], fixations=3) + _readings(second, ["usable"], 4)
    _saliency(image=readings[0].image, kind="pooled")
    kept = ReadingSession.objects.create(lab=personas.lab_a, reader=session.reader, name="K")
    _readings(_recording(kept, "k.csv"), ["good"])
    client = login(personas.researcher_a)
    page = unescape(client.get(f"/sessions/{session.pk}/").content.decode())
    assert (
        'data-confirm="Delete the session S1 with its 2 recordings, 3 readings, 10 fixations '
        'and 4 saliency maps? This cannot be undone."'
    ) in page
    assert (
        "Delete the recording a.csv with its 2 readings, 6 fixations and 3 saliency maps?"
    ) in page
    response = client.post(f"/sessions/{session.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/sessions/"
    assert not ReadingSession.objects.filter(pk=session.pk).exists()
    assert Recording.objects.filter(session=kept).count() == 1
    assert Reading.objects.count() == 1 and Fixation.objects.count() == 3
    assert SaliencyMap.objects.count() == 1


def test_delete_a_recording_from_its_page(personas, session):
    rec, other = _recording(session, "a.csv"), _recording(session, "b.csv")
    _readings(rec, ["good"], fixations=5)
    _readings(other, ["good"], fixations=2)
    client = login(personas.reader_a)  # the session's own reader
    page = unescape(client.get(f"/recordings/{rec.pk}/").content.decode())
    assert (
        'data-confirm="Delete the recording a.csv with its 1 reading, 5 fixations and 1 '
        'saliency map? This cannot be undone."'
    ) in page
    response = client.post(f"/recordings/{rec.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/sessions/{session.pk}/"
    assert list(Recording.objects.values_list("pk", flat=True)) == [other.pk]
    assert Fixation.objects.count() == 2


def test_the_delete_confirmations_cost_the_same_queries_for_many_recordings(personas, session):
    _readings(_recording(session, "a.csv"), ["good"])
    client = login(personas.researcher_a)
    with CaptureQueriesContext(connection) as few:
        client.get(f"/sessions/{session.pk}/")
    for i in range(4):
        _readings(_recording(session, f"more{i}.csv"), ["good", "poor"])
    with CaptureQueriesContext(connection) as many:
        client.get(f"/sessions/{session.pk}/")
    assert len(many.captured_queries) == len(few.captured_queries)


# --- Readings' training flag ------------------------------------------------------------------
def test_toggle_one_reading_on_the_recording_and_session_pages(personas, session):
    rec = _recording(session)
    good, poor = _readings(rec, ["good", "poor"])
    client = login(personas.researcher_a)
    page = client.get(f"/recordings/{rec.pk}/").content.decode()
    assert f'action="/readings/{good.pk}/training/"' in page
    assert f'aria-label="Leave the reading of {good.image.key} out of training"' in page
    response = client.post(f"/readings/{good.pk}/training/", {
        "use_for_training": "0", "next": f"/recordings/{rec.pk}/?page=1",
    })  # fmt: skip
    assert response["Location"] == f"/recordings/{rec.pk}/?page=1"
    assert not Reading.objects.get(pk=good.pk).use_for_training
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert f'aria-label="Use the reading of {poor.image.key} for training"' in page
    response = client.post(f"/readings/{poor.pk}/training/", {
        "use_for_training": "1", "next": "https://evil.example/",
    })  # fmt: skip
    assert response["Location"] == f"/recordings/{rec.pk}/"  # not another site
    assert Reading.objects.get(pk=poor.pk).use_for_training


def test_toggling_needs_the_write_role_and_a_valid_value(personas, session):
    [reading] = _readings(_recording(session), ["good"])
    for who in ("viewer_a", "reader_a"):  # the API's rule: researchers and admins
        client = login(getattr(personas, who))
        page = client.get(f"/sessions/{session.pk}/").content.decode()
        assert "training-toggle" not in page, who
        assert client.post(f"/readings/{reading.pk}/training/", {"use_for_training": "0"}) \
            .status_code == 403  # fmt: skip
    client = login(personas.admin_a)
    for value in ("", "yes", "2"):
        response = client.post(f"/readings/{reading.pk}/training/", {"use_for_training": value})
        assert response.status_code == 400 and b"use_for_training" in response.content
    assert client.get(f"/readings/{reading.pk}/training/").status_code == 405
    assert Reading.objects.get(pk=reading.pk).use_for_training


def test_leave_out_all_poor_readings_of_a_session_in_one_update(personas, session):
    rec = _recording(session)
    readings = _readings(rec, ["good", "poor", "poor", "usable", "poor"])
    Reading.objects.filter(pk=readings[1].pk).update(use_for_training=True)
    Reading.objects.filter(pk=readings[2].pk).update(use_for_training=True)
    other = ReadingSession.objects.create(lab=personas.lab_a, reader=session.reader, name="O")
    [elsewhere] = _readings(_recording(other, "o.csv"), ["poor"])
    Reading.objects.filter(pk=elsewhere.pk).update(use_for_training=True)
    pooled = _saliency(image=readings[1].image, kind="pooled")
    client = login(personas.researcher_a)
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert 'id="bulk-training-form"' in page and '<label for="id_grade">' in page
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/sessions/{session.pk}/training/", {"grade": "poor", "use_for_training": "0"}
        )
    assert response.status_code == 302
    updates = [q for q in queries.captured_queries
               if q["sql"].startswith('UPDATE "gaze_reading"')]  # fmt: skip
    assert len(updates) == 1
    page = client.get(response["Location"]).content.decode()
    assert "All 3 poor readings of this session are left out of training (2 changed)." in page
    flags = dict(Reading.objects.filter(session=session).values_list("pk", "use_for_training"))
    assert flags == {readings[0].pk: True, readings[1].pk: False, readings[2].pk: False,
                     readings[3].pk: True, readings[4].pk: False}  # fmt: skip
    assert Reading.objects.get(pk=elsewhere.pk).use_for_training  # another session's
    assert not SaliencyMap.objects.filter(pk=pooled.pk).exists()  # the pool is made anew
    response = client.post(
        f"/sessions/{session.pk}/training/", {"grade": "usable", "use_for_training": "1"}
    )
    assert "All 1 usable reading of this session are used for training (0 changed)." in (
        client.get(response["Location"]).content.decode()
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grade": "awful", "use_for_training": "0"}, "grade"),
        ({"grade": "poor", "use_for_training": "maybe"}, "use_for_training"),
        ({"use_for_training": "0"}, "grade"),
    ],
)
def test_bad_bulk_input_is_shown_on_its_field(personas, session, body, field):
    readings = _readings(_recording(session), ["poor", "good"])
    before = [_fields(r) for r in readings]
    response = login(personas.researcher_a).post(f"/sessions/{session.pk}/training/", body)
    assert response.status_code == 400
    assert _error(response.content.decode(), field)
    assert [_fields(r) for r in readings] == before


def test_bulk_toggle_needs_the_write_role(personas, session):
    [reading] = _readings(_recording(session), ["good"])
    client = login(personas.reader_a)  # the session's reader, but not a researcher
    assert "bulk-training-form" not in client.get(f"/sessions/{session.pk}/").content.decode()
    body = {"grade": "good", "use_for_training": "0"}
    assert client.post(f"/sessions/{session.pk}/training/", body).status_code == 403
    assert Reading.objects.get(pk=reading.pk).use_for_training


def test_the_session_page_pages_its_readings(personas, session):
    from apps.gaze.views import SESSION_READINGS_PER_PAGE

    rec = _recording(session)
    _readings(rec, ["good"] * (SESSION_READINGS_PER_PAGE + 3), fixations=0)
    client = login(personas.viewer_a)
    html = client.get(f"/sessions/{session.pk}/").content.decode()
    assert html.count("<tr data-reading=") == SESSION_READINGS_PER_PAGE
    assert "Page 1 of 2" in html
    html = client.get(f"/sessions/{session.pk}/?page=2").content.decode()
    assert html.count("<tr data-reading=") == 3
