"""The members page's invitations and the invitation link's page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.labs.middleware import SESSION_KEY
from apps.labs.models import Invitation, Membership, User
from apps.labs.roles import Role
from tests.factories import MembershipFactory


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite_on_page(personas, invitee: str, role: str = Role.READER):
    response = signed_in(personas.admin_a).post(
        reverse("invitation-create"),
        {"lab": personas.lab_a.pk, "invitee": invitee, "role": role},
    )
    assert response.status_code == 200, response.content
    return response


def link_of(response) -> str:
    return response.context["created_url"].removeprefix("http://testserver")


def test_old_add_form_is_gone(personas):
    client = signed_in(personas.admin_a)
    html = client.get(reverse("members")).content.decode()
    assert 'id="add-member-form"' not in html and "/members/add/" not in html
    response = client.post(
        "/members/add/", {"lab": personas.lab_a.pk, "user": "outsider", "role": "admin"}
    )
    assert response.status_code == 404
    assert not Membership.objects.filter(user=personas.outsider).exists()


def test_admin_invites_on_the_members_page_and_sees_the_link_once(personas):
    response = invite_on_page(personas, "new.reader@example.org")
    html = response.content.decode()
    link = link_of(response)
    assert link.startswith("/invitations/")
    assert f'<code id="invitation-link" class="secret">http://testserver{link}</code>' in html
    assert "no-store" in response["Cache-Control"]
    [message] = mail.outbox
    assert message.to == ["new.reader@example.org"] and link in message.body
    assert not Membership.objects.filter(lab=personas.lab_a, user__email="new.reader@example.org")

    again = signed_in(personas.admin_a).get(reverse("members"))
    page = again.content.decode()
    assert link not in page  # shown once
    rows = again.context["invitations"]
    assert [i.invitee for i in rows] == ["new.reader@example.org"]
    assert 'id="invitations-table"' in page and "new.reader@example.org" in page
    revoke = reverse("invitation-revoke", args=[rows[0].pk])
    assert f'action="{revoke}"' in page


def test_admin_withdraws_an_invitation_on_the_page(personas):
    link = link_of(invite_on_page(personas, "gone@example.org"))
    invitation = Invitation.objects.get()
    assert (
        signed_in(personas.viewer_a)
        .post(reverse("invitation-revoke", args=[invitation.pk]))
        .status_code
        == 403
    )
    assert (
        signed_in(personas.admin_b)
        .post(reverse("invitation-revoke", args=[invitation.pk]))
        .status_code
        == 404
    )
    response = signed_in(personas.admin_a).post(
        reverse("invitation-revoke", args=[invitation.pk]), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("members")
    assert 'id="no-invitations"' in response.content.decode()
    gone = Client().get(link)
    assert gone.status_code == 410 and b"withdrawn" in gone.content


def test_non_admins_see_no_invitations_and_no_emails(personas):
    invite_on_page(personas, "secret@example.org")
    html = signed_in(personas.viewer_a).get(reverse("members")).content.decode()
    assert "secret@example.org" not in html and 'id="invitations-table"' not in html
    assert "admin_a@example.org" not in html and "researcher_a@example.org" not in html
    assert "mailto:" not in html
    admin_html = signed_in(personas.admin_a).get(reverse("members")).content.decode()
    assert 'href="mailto:viewer_a@example.org"' in admin_html


def test_invitation_page_for_a_new_person_creates_the_account_and_the_membership(personas):
    link = link_of(invite_on_page(personas, "Nadia@Example.org", role=Role.RESEARCHER))
    client = Client()
    page = client.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<span id="invitation-lab">Lab A</span>' in html
    assert '<strong id="invitation-role">researcher</strong>' in html
    assert 'id="signup-form"' in html and 'name="password2"' in html
    assert "no-store" in page["Cache-Control"]

    mismatch = client.post(
        link, {"username": "nadia", "password1": "a-long-pass-phrase", "password2": "other"}
    )
    assert mismatch.status_code == 400 and not User.objects.filter(username="nadia").exists()
    taken = client.post(
        link,
        {"username": "viewer_a", "password1": "x-ray-gaze-2026!", "password2": "x-ray-gaze-2026!"},
    )
    assert taken.status_code == 400 and taken.context["signup_form"].errors["username"]

    response = client.post(
        link,
        {"username": "nadia", "password1": "x-ray-gaze-2026!", "password2": "x-ray-gaze-2026!"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    nadia = User.objects.get(username="nadia")
    assert nadia.check_password("x-ray-gaze-2026!") and nadia.email == "Nadia@Example.org"
    assert Membership.objects.get(user=nadia, lab=personas.lab_a).role == Role.RESEARCHER
    assert get_user(client).pk == nadia.pk and client.session[SESSION_KEY] == personas.lab_a.pk
    home = client.get(reverse("home"))
    assert '<h1 id="lab-name">Lab A</h1>' in home.content.decode()
    assert "You joined Lab A as researcher." in [str(m) for m in home.context["messages"]]
    used = Client().get(link)
    assert used.status_code == 410 and b"already been used" in used.content


def test_signed_in_person_accepts_with_a_button(personas):
    link = link_of(invite_on_page(personas, "outsider@somewhere.example"))
    client = signed_in(personas.outsider)
    page = client.get(link)
    html = page.content.decode()
    assert page.status_code == 200 and 'id="accept-form"' in html and "signup-form" not in html
    assert not Membership.objects.filter(user=personas.outsider).exists()  # a GET accepts nothing
    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert Membership.objects.get(user=personas.outsider, lab=personas.lab_a).role == Role.READER
    assert client.get(link).status_code == 410


def test_the_accept_post_is_csrf_protected(personas):
    link = link_of(invite_on_page(personas, "outsider@somewhere.example"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.outsider)
    assert client.post(link).status_code == 403
    assert not Membership.objects.filter(user=personas.outsider).exists()


def test_username_invitation_page(personas):
    link = link_of(invite_on_page(personas, "outsider"))
    anonymous = Client().get(link)
    html = anonymous.content.decode()
    assert anonymous.status_code == 200 and 'id="sign-in-link"' in html
    assert "signup-form" not in html
    # Posting a sign-up anyway creates nothing.
    Client().post(
        link, {"username": "x1", "password1": "x-ray-gaze-2026!", "password2": "x-ray-gaze-2026!"}
    )
    assert not User.objects.filter(username="x1").exists()

    other = signed_in(personas.admin_b)
    refused = other.get(link)
    assert refused.status_code == 403 and b"another account" in refused.content
    assert b'id="accept-form"' not in refused.content
    assert other.post(link).status_code == 403
    assert not Membership.objects.filter(user=personas.admin_b, lab=personas.lab_a).exists()

    assert signed_in(personas.outsider).post(link).status_code == 302
    assert Membership.objects.filter(user=personas.outsider, lab=personas.lab_a).exists()


def test_member_opening_an_invitation_is_told_so(personas):
    link = link_of(invite_on_page(personas, "someone@example.org"))
    client = signed_in(personas.viewer_a)
    page = client.get(link)
    assert b"already a member of Lab A" in page.content and b'id="accept-form"' not in page.content
    assert client.post(link).status_code == 200
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize(
    ("state", "status", "text"),
    [
        ("unknown", 404, b"not valid"),
        ("expired", 410, b"expired"),
        ("revoked", 410, b"withdrawn"),
        ("accepted", 410, b"already been used"),
    ],
)
def test_unusable_links_answer_a_clear_page(personas, state, status, text):
    link = link_of(invite_on_page(personas, "x@example.org"))
    invitation = Invitation.objects.get()
    if state == "unknown":
        link = link[:-6] + "zzzzz/"
    elif state == "expired":
        invitation.expires_at = timezone.now() - timedelta(minutes=1)
    elif state == "revoked":
        invitation.revoked_at = timezone.now()
    else:
        invitation.accepted_at = timezone.now()
    invitation.save()
    for client in (Client(), signed_in(personas.outsider)):
        for method in (client.get, client.post):
            response = method(link)
            assert response.status_code == status
            assert text in response.content and b'id="invitation-problem"' in response.content
    assert not Membership.objects.filter(user=personas.outsider).exists()
    assert Client().get("/invitations/" + "a" * 500 + "/").status_code == 404


def test_invitee_sees_nothing_of_the_lab_before_accepting(personas):
    link = link_of(invite_on_page(personas, "outsider@somewhere.example"))
    client = signed_in(personas.outsider)
    client.get(link)
    home = client.get(reverse("home")).content.decode()
    assert "not a member of any lab" in home and "Lab A" not in home
    members = client.get(reverse("members")).content.decode()
    assert "viewer_a" not in members


def test_a_lab_b_member_in_both_labs_still_sees_only_usernames_in_lab_a(personas):
    MembershipFactory(user=personas.admin_b, lab=personas.lab_a, role=Role.READER)
    client = signed_in(personas.admin_b)
    client.post(reverse("lab-switch"), {"lab": personas.lab_a.pk})
    html = client.get(reverse("members")).content.decode()
    assert "viewer_a" in html and "viewer_a@example.org" not in html
