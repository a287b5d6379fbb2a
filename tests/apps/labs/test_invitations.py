"""Invitations: nobody joins a lab without accepting; the link is the proof; no oracles."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.labs.models import Invitation, Membership
from apps.labs.roles import Role
from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory


def invite(personas, invitee: str, role: str = "reader", lab=None, actor=None):
    return client_for(actor or personas.admin_a).post(
        "/api/v1/invitations/",
        {"lab": (lab or personas.lab_a).pk, "invitee": invitee, "role": role},
        format="json",
    )


def token_of(response) -> str:
    return response.json()["accept_url"].rstrip("/").rsplit("/", 1)[1]


def accept(user, token: str):
    return client_for(user).post("/api/v1/invitations/accept/", {"token": token}, format="json")


def test_direct_adds_are_gone(personas):
    """The old direct add put anyone into a lab without asking them."""
    response = client_for(personas.admin_a).post(
        "/api/v1/memberships/",
        {"lab": personas.lab_a.pk, "user": "outsider", "role": "admin"},
        format="json",
    )
    assert response.status_code == 405
    assert not Membership.objects.filter(user=personas.outsider).exists()


def test_email_invitation_is_mailed_and_accepted_by_whoever_holds_the_link(personas):
    response = invite(personas, "Colleague@Example.org", role="researcher")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "Colleague@Example.org" and body["username"] == ""
    assert body["role"] == "researcher" and body["status"] == "pending"
    assert body["invited_by"] == "admin_a"
    url = body["accept_url"]
    assert url.startswith("http://testserver/invitations/")
    token = token_of(response)
    invitation = Invitation.objects.get(pk=body["id"])
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invitation.token_hash
    assert abs(invitation.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)

    [message] = mail.outbox
    assert message.to == ["Colleague@Example.org"]
    assert url in message.body and "Lab A" in message.subject

    # Until accepted, nothing of the lab is visible to the person who will accept.
    newcomer = UserFactory(username="newcomer", email="someone-else@example.org")
    client = client_for(newcomer)
    assert client.get("/api/v1/labs/").json()["count"] == 0
    assert client.get("/api/v1/memberships/").json()["count"] == 0
    assert client.get(f"/api/v1/labs/{personas.lab_a.pk}/").status_code == 404

    accepted = accept(newcomer, token)
    assert accepted.status_code == 201, accepted.json()
    assert Membership.objects.get(user=newcomer, lab=personas.lab_a).role == Role.RESEARCHER
    invitation.refresh_from_db()
    assert invitation.accepted_by == newcomer and invitation.accepted_at is not None
    assert client.get(f"/api/v1/labs/{personas.lab_a.pk}/").status_code == 200

    # One link, one membership.
    again = accept(personas.outsider, token)
    assert again.status_code == 410 and again.json()["error"]["code"] == "gone"
    assert not Membership.objects.filter(user=personas.outsider).exists()


def test_an_account_email_field_proves_nothing(personas):
    """A user who set a colleague's e-mail on their own account gains nothing from it."""
    mallory = personas.outsider
    response = client_for(mallory).patch(
        "/api/v1/me/", {"email": "colleague@example.org"}, format="json"
    )
    assert response.status_code == 200  # nobody is found by e-mail, so nothing to refuse
    invited = invite(personas, "colleague@example.org")
    assert invited.status_code == 201
    assert Invitation.objects.get().invited_user is None  # addressed to the address, not Mallory
    assert not Membership.objects.filter(user=mallory).exists()
    assert client_for(mallory).get("/api/v1/labs/").json()["count"] == 0
    # Only the link (mailed to the address) accepts: a guess does not.
    assert accept(mallory, "x" * 43).status_code == 404
    assert not Membership.objects.filter(user=mallory).exists()


def test_username_invitation_is_for_that_account_only(personas):
    personas.outsider.email = "outsider@example.org"
    personas.outsider.save()
    response = invite(personas, "outsider", role="viewer")
    assert response.status_code == 201
    [message] = mail.outbox  # delivered to the account's own address
    assert message.to == ["outsider@example.org"]
    token = token_of(response)

    refused = accept(personas.admin_b, token)
    assert refused.status_code == 403
    assert not Membership.objects.filter(user=personas.admin_b, lab=personas.lab_a).exists()
    assert accept(personas.outsider, token).status_code == 201
    assert Membership.objects.get(user=personas.outsider, lab=personas.lab_a).role == "viewer"


def test_unknown_and_existing_usernames_get_the_same_answer(personas):
    """Inviting a username that exists and one that does not must not tell them apart."""
    known, unknown = invite(personas, "outsider"), invite(personas, "nobody-here")
    assert known.status_code == unknown.status_code == 201

    def shape(response, name):
        body = dict(response.json())
        for key in ("id", "created_at", "expires_at", "accept_url"):
            assert body.pop(key)
        assert body.pop("username") == name
        return body

    assert shape(known, "outsider") == shape(unknown, "nobody-here")
    assert known.headers.keys() == unknown.headers.keys()
    # The unknown one is kept pending, never delivered, and nobody can accept it.
    listed = client_for(personas.admin_a).get("/api/v1/invitations/").json()["results"]
    assert {row["username"] for row in listed} == {"outsider", "nobody-here"}
    assert all(set(row) == set(listed[0]) for row in listed)
    assert [m.to for m in mail.outbox] == [[personas.outsider.email]]
    latecomer = UserFactory(username="nobody-here")
    assert accept(latecomer, token_of(unknown)).status_code == 403
    assert not Membership.objects.filter(user=latecomer).exists()


def test_inactive_account_is_treated_like_an_unknown_username(personas):
    personas.outsider.is_active = False
    personas.outsider.save()
    assert invite(personas, "outsider").status_code == 201
    assert mail.outbox == []


def test_accept_refuses_members_unknown_links_and_bad_bodies(personas):
    token = token_of(invite(personas, "someone@example.org"))
    response = accept(personas.viewer_a, token)  # already a member of lab A
    assert response.status_code == 400 and "already a member" in response.json()["error"]["message"]
    assert Invitation.objects.get().accepted_at is None  # still usable by its invitee
    assert accept(personas.outsider, "no-such-token").status_code == 404
    assert accept(personas.outsider, "").status_code == 400
    client = client_for(personas.outsider)
    bad = client.post("/api/v1/invitations/accept/", {"token": token, "x": 1}, format="json")
    assert bad.status_code == 400
    anonymous = client_for(None).post(
        "/api/v1/invitations/accept/", {"token": token}, format="json"
    )
    assert anonymous.status_code in (401, 403)
    assert Invitation.objects.get().accepted_at is None


def test_expired_and_revoked_links_are_gone(personas):
    expired = token_of(invite(personas, "late@example.org"))
    Invitation.objects.filter(email="late@example.org").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = accept(personas.outsider, expired)
    assert response.status_code == 410 and "expired" in response.json()["error"]["message"]

    created = invite(personas, "withdrawn@example.org")
    client = client_for(personas.admin_a)
    assert client.delete(f"/api/v1/invitations/{created.json()['id']}/").status_code == 204
    response = accept(personas.outsider, token_of(created))
    assert response.status_code == 410 and "withdrawn" in response.json()["error"]["message"]
    assert not Membership.objects.filter(user=personas.outsider).exists()


def test_only_a_labs_admins_list_and_revoke_its_invitations(personas):
    created = invite(personas, "pending@example.org").json()
    invite(personas, "b@example.org", lab=personas.lab_b, actor=personas.admin_b)
    rows = client_for(personas.admin_a).get("/api/v1/invitations/").json()["results"]
    assert [r["email"] for r in rows] == ["pending@example.org"]
    assert "accept_url" not in rows[0]  # the link is shown once, at creation
    # Members who are not admins see no invitation (they name e-mail addresses).
    assert client_for(personas.viewer_a).get("/api/v1/invitations/").json()["count"] == 0
    url = f"/api/v1/invitations/{created['id']}/"
    assert client_for(personas.viewer_a).delete(url).status_code == 403
    assert client_for(personas.admin_b).delete(url).status_code == 404
    assert Invitation.objects.get(pk=created["id"]).revoked_at is None
    assert client_for(personas.admin_a).delete(url).status_code == 204
    assert client_for(personas.admin_a).get("/api/v1/invitations/").json()["count"] == 0


def test_invitation_days_setting(personas, settings):
    settings.LAB_INVITATION_DAYS = 2
    invite(personas, "soon@example.org")
    expires = Invitation.objects.get().expires_at
    assert abs(expires - (timezone.now() + timedelta(days=2))) < timedelta(minutes=1)


def test_mail_failure_is_no_500(personas, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    response = invite(personas, "someone@example.org")
    assert response.status_code == 201 and response.json()["accept_url"]


# --- E-mail addresses are for the admins of a lab the person belongs to -----------------------


def emails_seen(user) -> dict[str, str | None]:
    rows = client_for(user).get("/api/v1/memberships/").json()["results"]
    return {row["user"]["username"]: row["user"]["email"] for row in rows}


def test_non_admin_members_see_usernames_not_emails(personas):
    seen = emails_seen(personas.viewer_a)
    assert set(seen) == {"admin_a", "researcher_a", "reader_a", "viewer_a"}
    assert seen["viewer_a"] == "viewer_a@example.org"  # one's own
    assert {name: email for name, email in seen.items() if name != "viewer_a"} == {
        "admin_a": None,
        "researcher_a": None,
        "reader_a": None,
    }
    assert "@example.org" not in str(
        {k: v for k, v in emails_seen(personas.researcher_a).items() if k != "researcher_a"}
    )


def test_admins_see_their_members_emails_only_in_labs_they_administer(personas):
    assert emails_seen(personas.admin_a)["viewer_a"] == "viewer_a@example.org"
    # admin_b is a mere viewer in lab A: no e-mails of lab A's members.
    MembershipFactory(user=personas.admin_b, lab=personas.lab_a, role=Role.VIEWER)
    seen = emails_seen(personas.admin_b)
    assert seen["viewer_a"] is None and seen["admin_b"] == "admin_b@example.org"
    one = client_for(personas.viewer_a).get(
        f"/api/v1/memberships/{Membership.objects.get(user=personas.admin_a).pk}/"
    )
    assert one.json()["user"]["email"] is None


# --- Filters: another lab's id reads like an id that exists nowhere ---------------------------


@pytest.mark.parametrize(
    ("route", "param", "foreign"),
    [
        ("/api/v1/memberships/", "lab", lambda p: p.lab_b.pk),
        ("/api/v1/memberships/", "user", lambda p: p.admin_b.pk),
        ("/api/v1/invitations/", "lab", lambda p: p.lab_b.pk),
        ("/api/v1/labs/", "slug", lambda p: p.lab_b.slug),
    ],
)
def test_foreign_and_missing_ids_answer_alike(personas, route, param, foreign):
    invite(personas, "b@example.org", lab=personas.lab_b, actor=personas.admin_b)
    client = client_for(personas.admin_a)
    other = client.get(route, {param: foreign(personas)})
    missing = client.get(route, {param: 999999 if param != "slug" else "no-such-lab"})
    assert other.status_code == missing.status_code == 200
    assert (
        other.json()
        == missing.json()
        == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
    )


@pytest.mark.parametrize("value", ["abc", "-1", "0", "99999999999999999999999"])
def test_malformed_ids_are_400_never_500(personas, value):
    response = client_for(personas.admin_a).get("/api/v1/memberships/", {"lab": value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
