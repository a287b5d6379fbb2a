"""The API's answer cache (``apps.core.respcache``) against a real Redis: answers are served
again only while every table they read is unchanged, never to another user, another token or
other roles, and writes from any path (the ORM, raw SQL, PostgreSQL's COPY, another process, a
transaction committing after the answer was built) make them stale."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.core import respcache
from apps.gaze.models import Reader
from apps.labs.models import Membership
from apps.labs.roles import Role
from apps.labs.services import api_token_create

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cache_on(settings):
    """The cache on a real Redis, under a prefix of this test's own."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # CI starts Redis: there, and here, a missing one fails
        pytest.fail(f"Redis at {REDIS_URL} does not answer: {exc}")
    settings.RESPONSE_CACHE_URL = REDIS_URL
    settings.RESPONSE_CACHE_PREFIX = f"test-{uuid.uuid4().hex}"
    respcache._unbumped.clear()
    respcache._down_until = 0.0
    yield
    respcache.clear()


def bearer(user) -> APIClient:
    _token, key = api_token_create(user=user, name=f"cache-{uuid.uuid4().hex[:6]}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/me/")  # the token's first use writes last_used_at
    return client


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.get("X-Response-Cache"), response.json()


def codes(body) -> list[str]:
    return sorted(r["code"] for r in body["results"])


# --- Pieces ---------------------------------------------------------------------------------
def test_tables_of_a_statement_and_writes_told_from_reads(db):
    sql = 'SELECT "gaze_reader"."id" FROM "gaze_reader" INNER JOIN "labs_lab" ON ("x"."lab_id")'
    assert respcache.tables_in(sql) == {"gaze_reader", "labs_lab"}
    assert respcache.tables_in('SELECT "id" FROM "not_a_table"') == set()
    assert respcache._is_write('  insert INTO "gaze_reader" ...')
    assert respcache._is_write('UPDATE "gaze_reader" SET ...')
    assert respcache._is_write('DELETE FROM "gaze_reader"')
    assert respcache._is_write('COPY "gaze_fixation" FROM STDIN')
    assert not respcache._is_write('SELECT "x" FROM "gaze_reader"')
    assert not respcache._is_write("SAVEPOINT s1")


def test_off_without_a_url(personas, settings):
    settings.RESPONSE_CACHE_URL = ""
    Reader.objects.create(lab=personas.lab_a, code="R1")
    client = bearer(personas.researcher_a)
    for _ in range(2):
        response = client.get("/api/v1/readers/")
        assert response.status_code == 200 and "X-Response-Cache" not in response


# --- Served again, and made stale -----------------------------------------------------------
def test_a_second_read_is_served_from_the_cache_with_the_token_query_alone(personas, cache_on):
    Reader.objects.create(lab=personas.lab_a, code="R1")
    client = bearer(personas.researcher_a)
    first = client.get("/api/v1/readers/")
    with CaptureQueriesContext(connection) as ctx:
        second = client.get("/api/v1/readers/")
    assert first["X-Response-Cache"] == "miss" and second["X-Response-Cache"] == "hit"
    assert second.content == first.content
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]  # the token
    assert "labs_apitoken" in ctx.captured_queries[0]["sql"]


@pytest.mark.parametrize(
    "write",
    [
        lambda lab: Reader.objects.create(lab=lab, code="R2"),
        lambda lab: Reader.objects.filter(lab=lab).update(code="R9"),
        lambda lab: Reader.objects.filter(lab=lab).delete(),
        lambda lab: Reader.objects.bulk_create([Reader(lab=lab, code="R3")]),
        lambda lab: connection.cursor().execute(
            'UPDATE "gaze_reader" SET "code" = %s WHERE "lab_id" = %s', ["R7", lab.pk]
        ),
    ],
    ids=["create", "update", "delete", "bulk_create", "raw-sql"],
)
def test_every_kind_of_write_makes_the_list_and_the_object_stale(personas, cache_on, write):
    reader = Reader.objects.create(lab=personas.lab_a, code="R1")
    client = bearer(personas.researcher_a)
    get(client, "/api/v1/readers/")
    client.get(f"/api/v1/readers/{reader.pk}/")
    assert get(client, "/api/v1/readers/")[0] == "hit"
    assert client.get(f"/api/v1/readers/{reader.pk}/")["X-Response-Cache"] == "hit"
    write(personas.lab_a)
    state, body = get(client, "/api/v1/readers/")
    assert state == "miss"
    assert codes(body) == sorted(Reader.objects.filter(lab=personas.lab_a).values_list(
        "code", flat=True))  # fmt: skip
    again = client.get(f"/api/v1/readers/{reader.pk}/")
    assert again.get("X-Response-Cache") in ("miss", None)
    if Reader.objects.filter(pk=reader.pk).exists():
        assert again.json()["code"] == Reader.objects.get(pk=reader.pk).code
    else:
        assert again.status_code == 404


def test_a_write_to_a_table_the_answer_did_not_read_leaves_it_fresh(personas, cache_on):
    Reader.objects.create(lab=personas.lab_a, code="R1")
    client = bearer(personas.researcher_a)
    get(client, "/api/v1/readers/")
    api_token_create(user=personas.admin_b, name="elsewhere")  # labs_apitoken: not read
    assert get(client, "/api/v1/readers/")[0] == "hit"


def test_fixations_copied_by_postgresql_make_the_fixation_list_stale(personas, cache_on):
    """On PostgreSQL the fixations go in by COPY, which Django's wrappers do not see (SQLite's
    ``bulk_create`` they do)."""
    import numpy as np

    from apps.gaze.services.parse import ReadingRows, _fixations_insert
    from tests.apps.datasets.objects import add_image
    from tests.apps.gaze.objects import gaze_reading

    image = add_image(personas.lab_a, personas.researcher_a, "img-a", "CHF", size=(60, 50))
    reading = gaze_reading(personas.lab_a, image)
    client = bearer(personas.researcher_a)
    path = f"/api/v1/fixations/?reading={reading.pk}"
    assert get(client, path)[1]["count"] == 0
    assert get(client, path)[0] == "hit"

    rows = ReadingRows(
        key=image.key, stimulus_name=image.key, start_ms=0.0, end_ms=200.0, quality={},
        start=np.array([0.0]), duration=np.array([200.0]),
        x=np.array([5.0]), y=np.array([6.0]), on_image=np.array([True]), source="vendor",
    )  # fmt: skip
    _fixations_insert(lab_id=personas.lab_a.pk, readings=[(reading.pk, rows)], batch=100)
    state, body = get(client, path)
    assert state == "miss" and body["count"] == 1


# --- Whose answer ---------------------------------------------------------------------------
def test_never_another_users_answer(personas, cache_on):
    Reader.objects.create(lab=personas.lab_a, code="A1")
    Reader.objects.create(lab=personas.lab_b, code="B1")
    a, b = bearer(personas.researcher_a), bearer(personas.admin_b)
    assert codes(get(a, "/api/v1/readers/")[1]) == ["A1"]
    assert get(a, "/api/v1/readers/")[0] == "hit"
    state, body = get(b, "/api/v1/readers/")
    assert state == "miss" and codes(body) == ["B1"]
    # Same lab, same role, another user: built afresh, not taken from the first.
    other = bearer(personas.viewer_a)
    assert get(other, "/api/v1/readers/")[0] == "miss"
    # Another lab's object is 404 for b, however often a fetched it.
    a_reader = Reader.objects.get(code="A1")
    assert a.get(f"/api/v1/readers/{a_reader.pk}/").status_code == 200
    assert a.get(f"/api/v1/readers/{a_reader.pk}/")["X-Response-Cache"] == "hit"
    assert b.get(f"/api/v1/readers/{a_reader.pk}/").status_code == 404


def test_a_role_taken_away_or_changed_is_seen_at_once(personas, cache_on):
    reader = Reader.objects.create(lab=personas.lab_a, code="A1")
    client = bearer(personas.viewer_a)
    assert get(client, "/api/v1/readers/")[0] == "miss"
    assert client.get(f"/api/v1/readers/{reader.pk}/")["X-Response-Cache"] == "miss"
    assert get(client, "/api/v1/readers/")[0] == "hit"
    membership = Membership.objects.get(user=personas.viewer_a, lab=personas.lab_a)
    membership.role = Role.RESEARCHER
    membership.save()
    assert get(client, "/api/v1/readers/")[0] == "miss"
    membership.delete()
    assert get(client, "/api/v1/readers/")[1]["count"] == 0
    assert client.get(f"/api/v1/readers/{reader.pk}/").status_code == 404


def test_the_host_and_scheme_are_part_of_the_answer(personas, cache_on):
    Reader.objects.create(lab=personas.lab_a, code="A1")
    client = bearer(personas.researcher_a)
    client.get("/api/v1/readers/?page_size=1")
    other = client.get("/api/v1/readers/?page_size=1", HTTP_HOST="localhost")
    assert other["X-Response-Cache"] == "miss"


def test_errors_and_streams_are_not_stored(personas, cache_on):
    client = bearer(personas.researcher_a)
    for _ in range(2):
        response = client.get("/api/v1/readers/?lab=abc")
        assert response.status_code == 400 and "X-Response-Cache" not in response
        response = client.get("/api/v1/readers/999999/")
        assert response.status_code == 404 and "X-Response-Cache" not in response


def test_a_get_on_an_action_that_only_posts_is_still_a_405(personas, cache_on):
    client = bearer(personas.admin_a)
    for _ in range(2):
        response = client.get(f"/api/v1/labs/{personas.lab_a.pk}/regrade/")
        assert response.status_code == 405, response.content
        assert "X-Response-Cache" not in response


def test_invitations_are_never_cached(personas, cache_on):
    client = bearer(personas.admin_a)
    for _ in range(2):
        response = client.get("/api/v1/invitations/")
        assert response.status_code == 200 and "X-Response-Cache" not in response


# --- Writes elsewhere -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_an_answer_built_while_a_transaction_was_writing_is_stale_once_it_commits(cache_on):
    """The writer's immediate bump comes before the answer reads the old rows; only the bump
    after its commit makes that answer stale."""
    from tests.factories import LabFactory, MembershipFactory, UserFactory

    lab = LabFactory(name="Race", slug="race")
    user = UserFactory(username="racer")
    MembershipFactory(user=user, lab=lab, role=Role.RESEARCHER)
    Reader.objects.create(lab=lab, code="OLD")
    client = bearer(user)
    wrote, read = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                Reader.objects.filter(lab=lab).update(code="NEW")
                wrote.set()
                assert read.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    assert wrote.wait(30)
    state, body = get(client, "/api/v1/readers/")  # the old row: the write is not committed
    assert codes(body) == ["OLD"]
    read.set()
    thread.join(30)
    state, body = get(client, "/api/v1/readers/")
    assert state == "miss" and codes(body) == ["NEW"]


@pytest.mark.django_db(transaction=True)
def test_a_write_in_another_process_makes_answers_stale(cache_on, settings):
    from tests.factories import LabFactory, MembershipFactory, UserFactory

    lab = LabFactory(name="Proc", slug="proc")
    user = UserFactory(username="proc")
    MembershipFactory(user=user, lab=lab, role=Role.RESEARCHER)
    Reader.objects.create(lab=lab, code="OLD")
    client = bearer(user)
    get(client, "/api/v1/readers/")
    assert get(client, "/api/v1/readers/")[0] == "hit"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RESPONSE_CACHE_URL": REDIS_URL,
        "RESPONSE_CACHE_PREFIX": settings.RESPONSE_CACHE_PREFIX,
    }
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    code = f"from apps.gaze.models import Reader; Reader.objects.filter(lab_id={lab.pk}).update(code='NEW')"  # noqa: E501
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    state, body = get(client, "/api/v1/readers/")
    assert state == "miss" and codes(body) == ["NEW"]


def test_redis_away_answers_as_without_a_cache(personas, settings, caplog):
    respcache._down_until = 0.0
    settings.RESPONSE_CACHE_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    Reader.objects.create(lab=personas.lab_a, code="A1")
    client = bearer(personas.researcher_a)
    for _ in range(2):
        response = client.get("/api/v1/readers/")
        assert response.status_code == 200 and codes(response.json()) == ["A1"]
    Reader.objects.create(lab=personas.lab_a, code="A2")  # its bump fails, with a warning
    assert codes(client.get("/api/v1/readers/").json()) == ["A1", "A2"]
    assert "response cache" in caplog.text


def test_writes_made_while_redis_was_away_are_bumped_before_it_serves_again(
    personas, cache_on, monkeypatch
):
    Reader.objects.create(lab=personas.lab_a, code="A1")
    client = bearer(personas.researcher_a)
    get(client, "/api/v1/readers/")
    assert get(client, "/api/v1/readers/")[0] == "hit"
    real = respcache._client

    def away():
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(respcache, "_client", away)
    Reader.objects.create(lab=personas.lab_a, code="A2")  # its bump fails
    assert respcache._unbumped == {"gaze_reader"}
    state, body = get(client, "/api/v1/readers/")  # Redis not asked: built afresh
    assert state is None and codes(body) == ["A1", "A2"]
    monkeypatch.setattr(respcache, "_client", real)
    state, body = get(client, "/api/v1/readers/")  # still within RETRY_S: afresh
    assert state is None and codes(body) == ["A1", "A2"]
    respcache._down_until = 0.0  # RETRY_S later
    state, body = get(client, "/api/v1/readers/")
    assert state == "miss" and codes(body) == ["A1", "A2"]  # not the answer from before
    assert not respcache._unbumped


def test_clear_makes_every_answer_stale(personas, cache_on):
    from django.core.management import call_command

    Reader.objects.create(lab=personas.lab_a, code="A1")
    client = bearer(personas.researcher_a)
    get(client, "/api/v1/readers/")
    assert get(client, "/api/v1/readers/")[0] == "hit"
    call_command("response_cache", "--clear")
    assert get(client, "/api/v1/readers/")[0] == "miss"


@pytest.mark.django_db(transaction=True)
def test_the_wrapper_stays_installed_past_an_execute_wrapper_around_a_new_connection():
    calls = []

    def counting(execute, sql, params, many, context):
        calls.append(sql)
        return execute(sql, params, many, context)

    connection.close()
    with connection.execute_wrapper(counting):
        Reader.objects.count()  # the connection is made in here: respcache.install runs
    assert calls
    assert connection.execute_wrappers == [respcache.execute_wrapper]


# --- Every route: what lab A's admin was answered is never lab B's --------------------------
def _tenancy():
    from tests.apps import test_tenancy as t

    return t


_T = _tenancy()
_CACHED_GETS = [
    r for r in _T.PROTECTED
    if "get" in r.methods and r.view.tenancy == "lab" and _T._basename(r) in _T.RESOURCES
]  # fmt: skip


@pytest.mark.parametrize("route", _CACHED_GETS, ids=str)
def test_an_answer_cached_for_one_lab_is_never_given_to_another(route, personas, cache_on,
                                                                 settings, tmp_path):  # fmt: skip
    settings.MEDIA_ROOT = str(tmp_path / "media")
    make, _, _, make_own = _T.RESOURCES[_T._basename(route)]
    obj = make(personas)
    a, b = _T.client_for(personas.admin_a), _T.client_for(personas.admin_b)
    url = route.url(obj.pk) if route.detail else route.url()
    # Three times: a read that stores what it computed (a reading's saliency target) writes a
    # table it read, so its first answer is stale at once.
    first, _, third = a.get(url), a.get(url), a.get(url)
    assert third.status_code == first.status_code
    if first.status_code == 200 and not first.streaming:
        assert third.get("X-Response-Cache") in ("hit", None), route  # None: not a lab view
        assert third.content == first.content
    theirs = b.get(url)
    if route.detail:
        assert theirs.status_code == 404, (route, theirs.status_code)
    elif first.status_code == 200 and "results" in first.json():
        own = make_own(personas)
        ids = [row["id"] for row in b.get(url).json()["results"]]
        assert obj.pk not in ids and own.pk in ids, route
