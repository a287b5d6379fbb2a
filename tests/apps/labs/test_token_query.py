"""``selectors.api_token_by_hash``: the one SQL statement every token request makes gives what
the ORM would (every field of the token and its user, converted as the ORM converts them) and
the user's roles, on whichever database the suite runs (SQLite's dates are text)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.labs.models import ApiToken, Membership, User
from apps.labs.selectors import api_token_by_hash
from apps.labs.services import _hash_key, api_token_create

pytestmark = pytest.mark.django_db


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_it_gives_what_the_orm_gives_and_the_roles(personas):
    user = personas.researcher_a
    User.objects.filter(pk=user.pk).update(first_name="Ada", last_login=timezone.now())
    Membership.objects.create(user=user, lab=personas.lab_b, role="viewer")
    token, key = api_token_create(user=user, name="laptop", expires_in_days=3)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(hours=2))

    with CaptureQueriesContext(connection) as ctx:
        got = api_token_by_hash(key_hash=_hash_key(key))
        assert got.user.username == "researcher_a"  # cached: no query of its own
    assert len(ctx.captured_queries) == 1

    want = ApiToken.objects.select_related("user").get(pk=token.pk)
    assert _fields(got) == _fields(want)
    assert _fields(got.user) == _fields(want.user)
    assert got.expires_at.tzinfo is not None and got.user.date_joined.tzinfo is not None
    assert isinstance(got.user.is_active, bool) and got.user.first_name == "Ada"
    assert got.lab_roles == {personas.lab_a.pk: "researcher", personas.lab_b.pk: "viewer"}
    assert not got._state.adding and got._state.db == "default"
    # The instances behave as loaded ones: they save and refresh.
    got.name = "renamed"
    got.save(update_fields=["name"])
    assert ApiToken.objects.get(pk=token.pk).name == "renamed"


def test_a_user_of_no_lab_has_no_roles_and_an_unknown_hash_is_none(personas):
    _token, key = api_token_create(user=personas.outsider, name="solo")
    got = api_token_by_hash(key_hash=_hash_key(key))
    assert got.user == personas.outsider and got.lab_roles == {}
    assert got.expires_at is not None and got.revoked_at is None and got.last_used_at is None
    assert api_token_by_hash(key_hash=_hash_key("cxr_nothing")) is None
    assert api_token_by_hash(key_hash="' OR 1=1 --") is None  # a parameter, never SQL
