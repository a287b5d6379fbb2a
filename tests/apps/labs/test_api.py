"""The labs API: memberships and roles, tokens, the signed-in user, and the error format."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.labs.models import ApiToken, Invitation, Lab, Membership
from apps.labs.services import api_token_create, api_token_purge
from tests.conftest import client_for


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if field is not None:
        assert field in body["error"]["fields"], body
        assert (
            field in body["error"]["message"]
            or body["error"]["fields"][field][0] in (body["error"]["message"])
        )
    return body["error"]


# --- Memberships ----------------------------------------------------------------------------
def test_admin_invites_a_member_who_accepts_then_is_changed_and_removed(personas):
    client = client_for(personas.admin_a)
    response = client.post(
        "/api/v1/invitations/",
        {"lab": personas.lab_a.pk, "invitee": "outsider@example.org", "role": "reader"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    token = response.json()["accept_url"].rstrip("/").rsplit("/", 1)[1]
    assert not Membership.objects.filter(user=personas.outsider).exists()  # not before consent
    accepted = client_for(personas.outsider).post(
        "/api/v1/invitations/accept/", {"token": token}, format="json"
    )
    assert accepted.status_code == 201, accepted.json()
    assert accepted.json()["user"]["username"] == "outsider"
    pk = accepted.json()["id"]
    response = client.patch(f"/api/v1/memberships/{pk}/", {"role": "researcher"}, format="json")
    assert response.status_code == 200
    assert Membership.objects.get(pk=pk).role == "researcher"
    assert client.delete(f"/api/v1/memberships/{pk}/").status_code == 204
    assert not Membership.objects.filter(pk=pk).exists()


@pytest.mark.parametrize("persona", ["researcher_a", "reader_a", "viewer_a"])
def test_only_admins_invite(personas, persona):
    client = client_for(getattr(personas, persona))
    response = client.post(
        "/api/v1/invitations/",
        {"lab": personas.lab_a.pk, "invitee": "outsider", "role": "admin"},
        format="json",
    )
    assert_error(response, 403, "permission_denied")
    assert not Invitation.objects.exists()


def test_inviting_to_a_lab_one_is_not_in_reads_as_missing_lab(personas):
    client = client_for(personas.admin_b)
    errors = []
    for lab in (personas.lab_a.pk, 999999):
        response = client.post(
            "/api/v1/invitations/",
            {"lab": lab, "invitee": "outsider", "role": "viewer"},
            format="json",
        )
        errors.append(assert_error(response, 400, "invalid", field="lab"))
    # Another lab's id and an id that exists nowhere read the same (the value aside).
    assert errors[0]["message"].replace(str(personas.lab_a.pk), "999999") == errors[1]["message"]
    assert not Invitation.objects.exists()


def test_inviting_a_member_and_a_bad_invitee_are_field_errors(personas):
    client = client_for(personas.admin_a)
    body = {"lab": personas.lab_a.pk, "invitee": "viewer_a", "role": "viewer"}
    assert_error(
        client.post("/api/v1/invitations/", body, format="json"), 400, "invalid", "invitee"
    )
    body["invitee"] = "not-an@address@"
    assert_error(
        client.post("/api/v1/invitations/", body, format="json"), 400, "invalid", "invitee"
    )
    body["invitee"] = "x" * 255
    assert_error(
        client.post("/api/v1/invitations/", body, format="json"), 400, "invalid", "invitee"
    )
    assert not Invitation.objects.exists()


def test_the_last_admin_cannot_be_demoted_or_removed(personas):
    client = client_for(personas.admin_a)
    own = Membership.objects.get(user=personas.admin_a, lab=personas.lab_a)
    error = assert_error(
        client.patch(f"/api/v1/memberships/{own.pk}/", {"role": "viewer"}, format="json"),
        400,
        "invalid",
        "role",
    )
    assert "at least one admin" in error["message"]
    assert_error(client.delete(f"/api/v1/memberships/{own.pk}/"), 400, "invalid")
    assert Membership.objects.get(pk=own.pk).role == "admin"


def test_a_member_may_leave_a_lab(personas):
    own = Membership.objects.get(user=personas.viewer_a)
    assert client_for(personas.viewer_a).delete(f"/api/v1/memberships/{own.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=own.pk).exists()


def test_memberships_filter_by_lab_and_role(personas):
    client = client_for(personas.admin_a)
    rows = client.get("/api/v1/memberships/", {"role": "viewer"}).json()["results"]
    assert [r["user"]["username"] for r in rows] == ["viewer_a"]
    rows = client.get("/api/v1/memberships/", {"lab": personas.lab_a.pk}).json()
    assert rows["count"] == 4


def test_lab_settings_are_for_admins(personas):
    url = f"/api/v1/labs/{personas.lab_a.pk}/"
    assert_error(
        client_for(personas.researcher_a).patch(url, {"name": "X"}, format="json"),
        403,
        "permission_denied",
    )
    response = client_for(personas.admin_a).patch(url, {"name": "Gaze Lab"}, format="json")
    assert response.status_code == 200
    assert Lab.objects.get(pk=personas.lab_a.pk).name == "Gaze Lab"
    assert_error(
        client_for(personas.admin_a).patch(url, {"slug": "lab-b"}, format="json"),
        400,
        "invalid",
        "slug",
    )


# --- Tokens ---------------------------------------------------------------------------------
def test_token_lifecycle(personas):
    client = client_for(personas.researcher_a)
    response = client.post("/api/v1/tokens/", {"name": "laptop"}, format="json")
    assert response.status_code == 201
    key = response.json()["token"]
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert key not in (token.key_hash, token.prefix) and key.startswith(token.prefix)
    assert len(token.key_hash) == 64  # only the SHA-256 is stored
    assert token.expires_at is not None

    me = bearer(key).get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "researcher_a"
    assert me.json()["memberships"] == [
        {"lab": personas.lab_a.pk, "lab_name": "Lab A", "lab_slug": "lab-a", "role": "researcher"}
    ]
    token.refresh_from_db()
    assert token.last_used_at is not None

    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["laptop"] and "token" not in listed[0]

    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    error = assert_error(bearer(key).get("/api/v1/me/"), 401, "authentication_failed")
    assert "revoked" in error["message"]
    assert client.get(f"/api/v1/tokens/{token.pk}/").json()["is_active"] is False


def test_expired_and_unknown_tokens_are_refused(personas):
    token, key = api_token_create(user=personas.viewer_a, name="old", expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert (
        "expired"
        in assert_error(bearer(key).get("/api/v1/me/"), 401, "authentication_failed")["message"]
    )
    assert_error(bearer("cxr_not-a-real-token").get("/api/v1/me/"), 401, "authentication_failed")
    assert_error(bearer("garbage").get("/api/v1/me/"), 401, "authentication_failed")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert_error(client.get("/api/v1/me/"), 401, "authentication_failed")


def test_token_that_never_expires(personas):
    response = client_for(personas.viewer_a).post(
        "/api/v1/tokens/", {"name": "ci", "expires_in_days": 0}, format="json"
    )
    assert response.json()["expires_at"] is None
    assert bearer(response.json()["token"]).get("/api/v1/me/").status_code == 200


def test_purge_deletes_only_long_dead_tokens(personas):
    alive, _ = api_token_create(user=personas.viewer_a, name="alive")
    dead, _ = api_token_create(user=personas.viewer_a, name="dead")
    ApiToken.objects.filter(pk=dead.pk).update(revoked_at=timezone.now() - timedelta(days=40))
    fresh, _ = api_token_create(user=personas.viewer_a, name="fresh-revoked")
    ApiToken.objects.filter(pk=fresh.pk).update(revoked_at=timezone.now())
    assert api_token_purge(older_than_days=30) == 1
    assert set(ApiToken.objects.values_list("name", flat=True)) == {"alive", "fresh-revoked"}


# --- Bad input: 4xx in the error format, never a 500 ----------------------------------------
def test_malformed_json(personas):
    response = client_for(personas.admin_a).generic(
        "POST", "/api/v1/labs/", "{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "colour": "red"}, "colour"),  # unknown field
        ({"name": "x", "id": 5}, "id"),  # read-only field
        ({"name": "x" * 121}, "name"),  # over-long
        ({"name": ["a list"]}, "name"),  # wrong type
        ({"name": "x", "slug": "not a slug!"}, "slug"),
        ({}, "name"),  # missing
    ],
)
def test_bad_lab_bodies(personas, body, field):
    before = Lab.objects.count()
    response = client_for(personas.admin_a).post("/api/v1/labs/", body, format="json")
    assert_error(response, 400, "invalid", field)
    assert Lab.objects.count() == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "expires_in_days": "soon"},
        {"name": "x", "expires_in_days": -1},
        {"name": "x", "expires_in_days": 99999},
        {"name": ""},
        {"name": "x", "token": "mine"},
    ],
)
def test_bad_token_bodies(personas, body):
    response = client_for(personas.viewer_a).post("/api/v1/tokens/", body, format="json")
    assert_error(response, 400, "invalid")
    assert not ApiToken.objects.exists()


def test_a_json_list_body_is_a_400(personas):
    response = client_for(personas.admin_a).post("/api/v1/invitations/", [1, 2], format="json")
    assert_error(response, 400, "invalid")


def test_non_numeric_ids_unknown_routes_and_wrong_methods(personas):
    client = client_for(personas.admin_a)
    assert_error(client.get("/api/v1/labs/abc/"), 404, "not_found")
    assert_error(client.get("/api/v1/nothing-here/"), 404, "not_found")
    assert_error(
        client.put(f"/api/v1/memberships/{personas.lab_a.pk}/", {}), 405, "method_not_allowed"
    )
    assert_error(client.get("/api/v1/labs/", {"page": 99}), 404, "not_found")


def test_form_encoded_body_is_refused_as_unsupported(personas):
    response = client_for(personas.admin_a).post("/api/v1/labs/", {"name": "x"})
    assert_error(response, 415, "unsupported_media_type")


def test_me_patch_validates_email(personas):
    client = client_for(personas.viewer_a)
    assert_error(
        client.patch("/api/v1/me/", {"email": "not an address"}, format="json"),
        400,
        "invalid",
        "email",
    )
    assert_error(
        client.patch("/api/v1/me/", {"username": "root"}, format="json"), 400, "invalid", "username"
    )
    response = client.patch("/api/v1/me/", {"first_name": "Vera"}, format="json")
    assert response.status_code == 200 and response.json()["first_name"] == "Vera"


def test_pagination_shape(personas):
    client = client_for(personas.admin_a)
    body = client.get("/api/v1/memberships/", {"page_size": 2}).json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["next"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "status"),
    [("0304-05-22T11:56:02-19:44", 200), ("2026-01-01T00:00:00+00:00", 200),
     ("0001-01-01T00:00:00+05:00", 400), ("not a date", 400)],
)  # fmt: skip
def test_date_time_filters_take_any_utc_offset_and_refuse_what_leaves_the_range(
    personas, value, status
):
    """PostgreSQL refuses an offset past 15:59; the filter turns the time into UTC first."""
    answer = client_for(personas.admin_a).get("/api/v1/tokens/", {"revoked_at": value})
    assert answer.status_code == status, answer.content
    if status == 400:
        assert "revoked_at" in answer.json()["error"]["fields"]
