"""The readers pages: every member sees the lab's readers with their sessions, readings and
grades; researchers and admins add, edit, link and delete them (the API's roles); viewers get
no button and 403; another lab's readers are 404; bad input shows on its field with 400."""

from __future__ import annotations

import io
import itertools
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.gaze import services
from apps.gaze.models import Reader, Reading, ReadingSession
from apps.imaging.models import Image


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _fields(reader: Reader) -> dict:
    reader.refresh_from_db()
    return {f.name: getattr(reader, f.name) for f in Reader._meta.concrete_fields}


_made = itertools.count()


def _images(lab, n: int) -> list[Image]:
    return Image.objects.bulk_create(
        Image(
            lab=lab, key=f"img-{lab.pk}-{i:03d}", source_format="png", width=250, height=300,
            bits_stored=8, photometric_interpretation="MONOCHROME2",
            pixel_sha256=f"{lab.pk:032x}{i:032x}", preview_path=f"p{i}.png",
            thumbnail_path=f"t{i}.png",
        )
        for i in (next(_made) for _ in range(n))
    )  # fmt: skip


def _session_with_grades(lab, reader: Reader, grades: list[str]) -> ReadingSession:
    """A session of ``reader`` with one reading per grade in ``grades``."""
    session = ReadingSession.objects.create(lab=lab, reader=reader, name=f"S-{reader.code}")
    data = b"time,x,y\n0,10,10\n10,11,10\n"
    [rec] = services.recording_upload(
        session=session, uploaded_by=None, enqueue=False,
        uploads=[services.Upload(file=io.BytesIO(data), filename="gaze.csv", size=len(data))],
        options={"time_unit": "ms", "space": "image_px", "image_key": "img"},
    )  # fmt: skip
    for image, grade in zip(_images(lab, len(grades)), grades, strict=True):
        Reading.objects.create(
            lab=lab, session=session, recording=rec, image=image, stimulus_name=image.key,
            grade=grade,
        )  # fmt: skip
    return session


@pytest.fixture
def reader(personas) -> Reader:
    return services.reader_create(lab=personas.lab_a, code="R1", years_experience=12,
                                  specialty="thoracic", user=personas.reader_a)  # fmt: skip


def _row(html: str, reader: Reader) -> str:
    match = re.search(rf'<tr data-reader="{reader.pk}">(.*?)</tr>', html, re.S)
    assert match, html
    return match.group(1)


def _cell(row: str, name: str) -> str:
    return re.search(rf'<td class="{name}">(\d+)</td>', row).group(1)


# --- The list ---------------------------------------------------------------------------------
def test_the_list_shows_counts_and_grades_in_one_query(personas, reader):
    _session_with_grades(personas.lab_a, reader, ["good", "good", "usable", "poor"])
    other = services.reader_create(lab=personas.lab_a, code="R2")
    services.reader_create(lab=personas.lab_b, code="B1")  # another lab's: not listed
    client = login(personas.viewer_a)
    html = client.get("/readers/").content.decode()
    row = _row(html, reader)
    assert "R1" in row and "12 years" in row and "thoracic" in row and "reader_a" in row
    assert [_cell(row, c) for c in ("n-sessions", "n-readings", "n-good", "n-usable", "n-poor")] \
        == ["1", "4", "2", "1", "1"]  # fmt: skip
    assert [_cell(_row(html, other), "n-readings")] == ["0"]
    assert "B1" not in html
    # The counts are one aggregated query: more readers, sessions and readings, same queries.
    with CaptureQueriesContext(connection) as few:
        client.get("/readers/")
    for i in range(3):
        more = services.reader_create(lab=personas.lab_a, code=f"X{i}")
        _session_with_grades(personas.lab_a, more, ["poor"] * (i + 1))
    with CaptureQueriesContext(connection) as many:
        client.get("/readers/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_viewers_see_no_buttons_and_get_403(personas, reader):
    client = login(personas.viewer_a)
    html = client.get("/readers/").content.decode()
    assert 'id="reader-form"' not in html and "Delete" not in html and "Edit" not in html
    page = client.get(f"/readers/{reader.pk}/").content.decode()
    assert 'id="reader-form"' not in page and 'id="reader-delete"' not in page
    before = _fields(reader)
    assert client.post("/readers/", {"code": "R9"}).status_code == 403
    assert client.post(f"/readers/{reader.pk}/", {"code": "R9"}).status_code == 403
    assert client.post(f"/readers/{reader.pk}/delete/").status_code == 403
    assert Reader.objects.count() == 1 and _fields(reader) == before


def test_readers_role_may_not_manage_readers(personas, reader):
    client = login(personas.reader_a)  # a reader uploads their own sessions, no more
    assert 'id="reader-form"' not in client.get("/readers/").content.decode()
    assert client.post("/readers/", {"code": "R9"}).status_code == 403
    assert client.post(f"/readers/{reader.pk}/delete/").status_code == 403
    assert Reader.objects.count() == 1


def test_another_labs_readers_are_404(personas, reader):
    client = login(personas.admin_b)
    before = _fields(reader)
    assert client.get(f"/readers/{reader.pk}/").status_code == 404
    assert client.post(f"/readers/{reader.pk}/", {"code": "R9"}).status_code == 404
    assert client.post(f"/readers/{reader.pk}/delete/").status_code == 404
    assert _fields(reader) == before
    assert f'data-reader="{reader.pk}"' not in client.get("/readers/").content.decode()


# --- Create -----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["researcher_a", "admin_a"])
def test_researchers_and_admins_add_a_reader_linked_to_a_member(personas, who):
    client = login(getattr(personas, who))
    html = client.get("/readers/").content.decode()
    # The member select offers the lab's members only.
    assert 'name="user"' in html and "viewer_a" in html and "admin_b" not in html
    response = client.post("/readers/", {
        "code": "R7", "years_experience": "3", "specialty": "chest", "user": personas.viewer_a.pk,
    })  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/readers/"
    reader = Reader.objects.get(lab=personas.lab_a, code="R7")
    assert (reader.years_experience, reader.specialty) == (3, "chest")
    assert reader.user == personas.viewer_a
    assert "Reader R7 added." in client.get("/readers/").content.decode()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"code": ""}, "code", "This field is required."),
        ({"code": "r1"}, "code", "The lab has a reader"),  # the service's refusal, any case
        ({"code": "R8", "years_experience": "-1"}, "years_experience", "greater than or equal"),
        ({"code": "R8", "years_experience": "abc"}, "years_experience", "Enter a whole number."),
        ({"code": "R8", "user": "999999"}, "user", "Select a valid choice"),
        ({"code": "x" * 61}, "code", "at most 60 characters"),
    ],
)
def test_bad_input_is_shown_on_its_field_and_stores_nothing(personas, reader, body, field, message):
    client = login(personas.researcher_a)
    response = client.post("/readers/", body)
    assert response.status_code == 400
    html = response.content.decode()
    error = re.search(rf'<div class="error" id="id_{field}_error"><p>(.*?)</p>', html)
    assert error and message in error.group(1), html
    assert Reader.objects.count() == 1


def test_a_member_of_another_lab_cannot_be_linked(personas, reader):
    client = login(personas.researcher_a)
    response = client.post(f"/readers/{reader.pk}/", {"code": "R1", "user": personas.admin_b.pk})
    assert response.status_code == 400 and 'id="id_user_error"' in response.content.decode()
    assert Reader.objects.get(pk=reader.pk).user == personas.reader_a


# --- Edit -------------------------------------------------------------------------------------
def test_researcher_edits_and_unlinks_a_reader(personas, reader):
    client = login(personas.researcher_a)
    page = client.get(f"/readers/{reader.pk}/").content.decode()
    assert 'value="R1"' in page and f'value="{personas.reader_a.pk}" selected' in page
    response = client.post(f"/readers/{reader.pk}/", {
        "code": "R1b", "years_experience": "", "specialty": "", "user": "",
    })  # fmt: skip
    assert response.status_code == 302 and response["Location"] == f"/readers/{reader.pk}/"
    reader.refresh_from_db()
    assert (reader.code, reader.years_experience, reader.specialty, reader.user) == (
        "R1b", None, "", None,
    )  # fmt: skip


def test_editing_to_a_taken_code_is_refused_on_the_field(personas, reader):
    services.reader_create(lab=personas.lab_a, code="R2")
    before = _fields(reader)
    response = login(personas.admin_a).post(f"/readers/{reader.pk}/", {"code": "R2"})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_code_error"><p>The lab has a reader [^<]*R2[^<]* already', html)
    assert "<h1>Reader R1</h1>" in html  # the page shows the reader as stored
    assert _fields(reader) == before


# --- Delete -----------------------------------------------------------------------------------
def test_delete_a_reader_without_sessions(personas):
    reader = services.reader_create(lab=personas.lab_a, code="R5")
    client = login(personas.researcher_a)
    html = client.get("/readers/").content.decode()
    assert 'data-confirm="Delete reader R5?"' in html
    response = client.post(f"/readers/{reader.pk}/delete/")
    assert response.status_code == 302 and not Reader.objects.filter(pk=reader.pk).exists()


def test_deleting_a_reader_with_sessions_is_refused_with_the_reason(personas, reader):
    _session_with_grades(personas.lab_a, reader, ["good"])
    response = login(personas.admin_a).post(f"/readers/{reader.pk}/delete/")
    assert response.status_code == 400
    html = response.content.decode()
    alert = re.search(r'id="reader-delete-error"><p>(.*?)</p>', html).group(1)
    assert alert == (
        "Reader R1 was not deleted: This reader has reading sessions: delete those first."
    )
    assert Reader.objects.filter(pk=reader.pk).exists()


def test_reader_delete_takes_post_only(personas, reader):
    assert login(personas.admin_a).get(f"/readers/{reader.pk}/delete/").status_code == 405


# --- Links from elsewhere ---------------------------------------------------------------------
def test_the_nav_links_the_readers_page(personas):
    html = login(personas.viewer_a).get("/sessions/").content.decode()
    assert '<a href="/readers/">Readers</a>' in html


def test_without_readers_the_sessions_page_points_to_the_readers_page(personas):
    html = login(personas.researcher_a).get("/sessions/").content.decode()
    assert "through the API" not in html
    assert re.search(r'id="no-reader">No reader yet: <a href="/readers/#add-reader">', html)
    html = login(personas.reader_a).get("/sessions/").content.decode()
    assert "No reader is linked to your account" in html and 'href="/readers/"' in html
