"""What the load benchmark made cheaper in every API read, and that each still answers right:
the roles read with the token, the count a short page does without, object reads without the
list's filters, the saliency maps' URLs and their PNG rendered once per file."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage
from rest_framework.test import APIClient

from apps.core import storage
from apps.gaze import services
from apps.gaze.services import saliency
from apps.labs.models import ApiToken, Membership
from apps.labs.services import api_token_create
from tests.apps.gaze.objects import reading_with_fixations
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    _token, key = api_token_create(user=user, name="reads")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/me/")  # the token's first use writes last_used_at: not counted below
    return client


def _sql(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries]


# --- Pagination -----------------------------------------------------------------------------
def _tokens(user, n: int) -> None:
    for i in range(n):
        api_token_create(user=user, name=f"t{i}")


def test_a_page_that_is_not_full_is_counted_without_a_count_query(personas):
    _tokens(personas.viewer_a, 3)
    client = client_for(personas.viewer_a)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/api/v1/tokens/").json()
    assert body["count"] == 3 and len(body["results"]) == 3
    assert body["next"] is None and body["previous"] is None
    assert not [sql for sql in _sql(ctx) if "COUNT(" in sql.upper()], _sql(ctx)


def test_an_empty_list_is_counted_without_a_count_query(personas):
    client = client_for(personas.outsider)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/api/v1/tokens/").json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}
    assert not [sql for sql in _sql(ctx) if "COUNT(" in sql.upper()]


def test_full_pages_are_counted_and_every_page_agrees(personas):
    _tokens(personas.viewer_a, 7)
    client = client_for(personas.viewer_a)
    with CaptureQueriesContext(connection) as ctx:
        first = client.get("/api/v1/tokens/", {"page_size": 3}).json()
    assert [sql for sql in _sql(ctx) if "COUNT(" in sql.upper()]  # a full page must count
    assert first["count"] == 7 and len(first["results"]) == 3 and first["next"]
    second = client.get("/api/v1/tokens/", {"page_size": 3, "page": 2}).json()
    third = client.get("/api/v1/tokens/", {"page_size": 3, "page": 3}).json()
    last = client.get("/api/v1/tokens/", {"page_size": 3, "page": "last"}).json()
    assert second["count"] == third["count"] == last["count"] == 7
    assert len(third["results"]) == 1 and third["next"] is None and third["previous"]
    assert last["results"] == third["results"]
    ids = [t["id"] for page in (first, second, third) for t in page["results"]]
    assert sorted(ids) == sorted(ApiToken.objects.filter(user=personas.viewer_a).values_list(
        "id", flat=True))  # fmt: skip
    exact = client.get("/api/v1/tokens/", {"page_size": 7}).json()  # full, and the last one
    assert exact["count"] == 7 and exact["next"] is None


@pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "99999999999999999999"])
def test_pages_past_the_end_or_not_numbers_are_404(personas, page):
    _tokens(personas.viewer_a, 7)
    answer = client_for(personas.viewer_a).get("/api/v1/tokens/", {"page_size": 3, "page": page})
    assert answer.status_code == 404, answer.content
    assert answer.json()["error"]["code"] == "not_found"


def test_page_two_of_a_list_that_fits_on_one_is_404(personas):
    _tokens(personas.viewer_a, 2)
    client = client_for(personas.viewer_a)
    assert client.get("/api/v1/tokens/", {"page": 2}).status_code == 404


# --- The token brings its user's roles ------------------------------------------------------
def test_a_token_read_takes_the_roles_with_the_token(personas):
    client = bearer(personas.viewer_a)
    lab_url = f"/api/v1/labs/{personas.lab_a.pk}/"
    with CaptureQueriesContext(connection) as ctx:
        answer = client.get(lab_url)
    assert answer.status_code == 200 and answer.json()["role"] == "viewer"
    membership_reads = [sql for sql in _sql(ctx) if 'FROM "labs_membership"' in sql]
    assert membership_reads == [], _sql(ctx)  # joined to the token's query, not a query of its own
    assert client.get(f"/api/v1/labs/{personas.lab_b.pk}/").status_code == 404


def test_roles_are_read_afresh_on_every_token_request(personas):
    client = bearer(personas.researcher_a)
    lab_url = f"/api/v1/labs/{personas.lab_a.pk}/"
    assert client.get(lab_url).json()["role"] == "researcher"
    Membership.objects.filter(user=personas.researcher_a).update(role="viewer")
    assert client.get(lab_url).json()["role"] == "viewer"
    Membership.objects.create(user=personas.researcher_a, lab=personas.lab_b, role="admin")
    labs = client.get("/api/v1/labs/").json()["results"]
    assert {(lab["id"], lab["role"]) for lab in labs} == {
        (personas.lab_a.pk, "viewer"), (personas.lab_b.pk, "admin")}  # fmt: skip
    Membership.objects.filter(user=personas.researcher_a).delete()
    assert client.get(lab_url).status_code == 404
    assert client.get("/api/v1/labs/").json()["count"] == 0
    assert client.get("/api/v1/me/").status_code == 200  # a member of no lab still signs in


def test_a_token_user_with_two_labs_gets_each_labs_role(personas):
    Membership.objects.create(user=personas.viewer_a, lab=personas.lab_b, role="researcher")
    client = bearer(personas.viewer_a)
    # Reading sessions need a reader: researchers may make readers, viewers may not.
    refused = client.post("/api/v1/readers/", {"lab": personas.lab_a.pk, "code": "R1"},
                          format="json")  # fmt: skip
    made = client.post("/api/v1/readers/", {"lab": personas.lab_b.pk, "code": "R2"},
                       format="json")  # fmt: skip
    assert refused.status_code == 403, refused.content
    assert made.status_code == 201, made.content


# --- Object reads ignore the list's filters -------------------------------------------------
def test_an_object_read_is_found_by_id_whatever_the_query_string(personas):
    client = bearer(personas.admin_a)
    reader = client.post("/api/v1/readers/", {"lab": personas.lab_a.pk, "code": "DrA"},
                         format="json").json()  # fmt: skip
    url = f"/api/v1/readers/{reader['id']}/"
    assert client.get(url, {"lab": personas.lab_b.pk}).json()["id"] == reader["id"]
    assert client.get(url, {"lab": "abc"}).status_code == 200
    assert client.get("/api/v1/readers/", {"lab": "abc"}).status_code == 400  # lists still check
    # The lab's scope still holds: another lab's admin finds nothing, filters or none.
    other = bearer(personas.admin_b)
    assert other.get(url).status_code == 404
    assert other.get(url, {"lab": personas.lab_a.pk}).status_code == 404
    assert client.get("/api/v1/readers/not-an-id/").status_code == 404


# --- Saliency maps --------------------------------------------------------------------------
@pytest.fixture
def maps(personas, session, images):
    points = [(60.0, 80.0, 250.0), (180.0, 200.0, 400.0)]
    reading = reading_with_fixations(personas.lab_a, session, images[0], points)
    return [
        services.saliency_map_get_or_create(reading=reading, target_size=size)
        for size in ((20, 16), (24, 20))
    ]


def test_map_urls_are_absolute_and_lead_to_their_files(personas, maps):
    client = client_for(personas.viewer_a)
    rows = client.get("/api/v1/saliency-maps/").json()["results"]
    assert len(rows) == 2
    for row in rows:
        assert row["npy_url"] == f"http://testserver/api/v1/saliency-maps/{row['id']}/npy/"
        assert row["png_url"] == f"http://testserver/api/v1/saliency-maps/{row['id']}/png/"
        assert client.get(row["png_url"]).content[:8] == b"\x89PNG\r\n\x1a\n"
    one = client.get(f"/api/v1/saliency-maps/{maps[0].pk}/").json()
    assert one["npy_url"].endswith(f"/saliency-maps/{maps[0].pk}/npy/")


def test_a_maps_png_is_rendered_once_per_file(personas, maps):
    saliency._png_of.cache_clear()
    client = client_for(personas.viewer_a)
    with mock.patch.object(storage, "read_bytes", wraps=storage.read_bytes) as reads:
        first = client.get(f"/api/v1/saliency-maps/{maps[0].pk}/png/").content
        again = client.get(f"/api/v1/saliency-maps/{maps[0].pk}/png/").content
        other = client.get(f"/api/v1/saliency-maps/{maps[1].pk}/png/").content
    assert first == again and first != other
    assert [call.args[0] for call in reads.call_args_list] == [maps[0].file_path,
                                                               maps[1].file_path]  # fmt: skip
    # The cached PNG is the one the map's values make (its maximum white).
    values = services.saliency_map_load(saliency_map=maps[0])
    pixels = np.asarray(PILImage.open(io.BytesIO(first)))
    assert pixels.shape == values.shape and pixels.max() == 255
    assert pixels.argmax() == values.argmax()
