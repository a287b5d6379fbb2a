"""The labs' HTML pages: home, lab switcher, members, API tokens; permissions and tenancy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.labs.middleware import SESSION_KEY
from apps.labs.models import ApiToken, Invitation, Lab, Membership
from apps.labs.roles import Role
from apps.labs.services import api_token_create
from tests.factories import PASSWORD, MembershipFactory, UserFactory


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def membership(user, lab) -> Membership:
    return Membership.objects.get(user=user, lab=lab)


def texts(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- Sign-in, navigation, static files --------------------------------------------------------


@pytest.mark.parametrize("name", ["home", "members", "tokens"])
def test_pages_need_login(db, name):
    response = Client().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("lab-create", {}),
        ("lab-switch", {}),
        ("invitation-create", {}),
        ("invitation-revoke", {"pk": 1}),
        ("membership-role", {"pk": 1}),
        ("membership-remove", {"pk": 1}),
        ("token-revoke", {"pk": 1}),
    ],
)
def test_posts_need_login(db, name, kwargs):
    response = Client().post(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_and_login(personas):
    client = Client()
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"csrfmiddlewaretoken" in page.content
    response = client.post(reverse("login"), {"username": "admin_a", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    bad = Client().post(reverse("login"), {"username": "admin_a", "password": "wrong"})
    assert bad.status_code == 200 and b"correct username and password" in bad.content


def test_logout_is_a_post(personas):
    client = signed_in(personas.admin_a)
    page = client.get(reverse("home"))
    assert f'action="{reverse("logout")}"'.encode() in page.content
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_base_has_navigation_switcher_and_local_assets(personas):
    MembershipFactory(user=personas.admin_a, lab=personas.lab_b, role=Role.VIEWER)
    html = signed_in(personas.admin_a).get(reverse("home")).content.decode()
    for url in (reverse("home"), reverse("members"), reverse("tokens"), "/api/v1/docs/"):
        assert f'href="{url}"' in html
    assert 'id="lab-switcher"' in html
    assert f'<option value="{personas.lab_b.pk}">Lab B</option>' in html
    assert static("css/app.css") in html and static("js/app.js") in html
    assert "https://" not in html.split("</head>")[0]  # nothing from a CDN


def test_plotly_is_served_locally(db, settings):
    url = static("vendor/plotly.min.js")
    assert finders.find("vendor/plotly.min.js")
    # WhiteNoise serves collected files in production; with finders on it serves the same path.
    settings.WHITENOISE_USE_FINDERS = True
    response = Client().get(url)
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


def test_posts_are_csrf_protected(personas):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.admin_a)
    response = client.post(reverse("tokens"), {"name": "x", "expires_in_days": 1})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_unknown_page_is_html_404(personas):
    response = signed_in(personas.admin_a).get("/no/such/page/")
    assert response.status_code == 404
    assert b"Not found" in response.content


# --- Home and labs -----------------------------------------------------------------------------


def test_home_shows_current_lab_role_and_member_count(personas):
    response = signed_in(personas.viewer_a).get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 id="lab-name">Lab A</h1>' in html
    assert '<dd id="lab-role">Viewer</dd>' in html
    assert '<dd id="lab-member-count">4</dd>' in html


def test_home_without_lab_offers_lab_creation(personas):
    client = signed_in(personas.outsider)
    html = client.get(reverse("home")).content.decode()
    assert "not a member of any lab" in html
    assert f'action="{reverse("lab-create")}"' in html
    response = client.post(reverse("lab-create"), {"name": "Gaze Lab", "description": "Readers"})
    assert response.status_code == 302
    lab = Lab.objects.get(name="Gaze Lab")
    assert membership(personas.outsider, lab).role == Role.ADMIN
    assert client.session[SESSION_KEY] == lab.pk
    assert '<h1 id="lab-name">Gaze Lab</h1>' in client.get(reverse("home")).content.decode()


@pytest.mark.parametrize("name", ["", "x" * 121])
def test_lab_create_rejects_bad_names(personas, name):
    response = signed_in(personas.outsider).post(reverse("lab-create"), {"name": name})
    assert response.status_code == 400
    assert response.context["lab_form"].errors["name"]
    assert Lab.objects.count() == 2


def test_lab_switch(personas):
    MembershipFactory(user=personas.admin_b, lab=personas.lab_a, role=Role.READER)
    client = signed_in(personas.admin_b)
    response = client.post(
        reverse("lab-switch"), {"lab": personas.lab_a.pk, "next": reverse("members")}
    )
    assert response.status_code == 302 and response["Location"] == reverse("members")
    assert client.session[SESSION_KEY] == personas.lab_a.pk
    html = client.get(reverse("home")).content.decode()
    assert '<h1 id="lab-name">Lab A</h1>' in html and '<dd id="lab-role">Reader</dd>' in html
    client.post(reverse("lab-switch"), {"lab": personas.lab_b.pk})
    assert '<h1 id="lab-name">Lab B</h1>' in client.get(reverse("home")).content.decode()


def test_lab_switch_ignores_offsite_next(personas):
    client = signed_in(personas.admin_a)
    response = client.post(
        reverse("lab-switch"), {"lab": personas.lab_a.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("home")


@pytest.mark.parametrize("raw", ["lab_a", "abc", ""])
def test_lab_switch_to_foreign_or_malformed_lab_is_404(personas, raw):
    client = signed_in(personas.admin_b)
    value = {"lab_a": personas.lab_a.pk}.get(raw, raw)
    assert client.post(reverse("lab-switch"), {"lab": value}).status_code == 404
    assert SESSION_KEY not in client.session
    assert '<h1 id="lab-name">Lab B</h1>' in client.get(reverse("home")).content.decode()


def test_lab_switch_is_post_only(personas):
    assert signed_in(personas.admin_a).get(reverse("lab-switch")).status_code == 405


# --- Members -----------------------------------------------------------------------------------


def test_members_page_lists_only_current_lab(personas):
    response = signed_in(personas.admin_a).get(reverse("members"))
    assert response.status_code == 200
    names = [m.user.username for m in response.context["memberships"]]
    assert names == ["admin_a", "reader_a", "researcher_a", "viewer_a"]
    html = response.content.decode()
    assert "admin_b" not in html
    assert 'id="invite-form"' in html
    role_url = reverse("membership-role", args=[membership(personas.viewer_a, personas.lab_a).pk])
    assert f'action="{role_url}"' in html


def test_members_page_is_read_only_for_non_admins(personas):
    html = signed_in(personas.researcher_a).get(reverse("members")).content.decode()
    assert "viewer_a" in html
    assert 'id="invite-form"' not in html
    assert "/role/" not in html
    assert "Only lab admins change membership" in html


def test_members_page_without_lab(personas):
    response = signed_in(personas.outsider).get(reverse("members"))
    assert response.status_code == 200 and b"not a member of any lab" in response.content


@pytest.mark.parametrize(
    "data,field",
    [
        ({"invitee": "viewer_a", "role": Role.READER}, "invitee"),  # already a member
        ({"invitee": "u" * 255, "role": Role.READER}, "invitee"),
        ({"invitee": "a@b@c", "role": Role.READER}, "invitee"),
        ({"invitee": "outsider", "role": "owner"}, "role"),
    ],
)
def test_invite_errors_are_form_errors(personas, data, field):
    response = signed_in(personas.admin_a).post(
        reverse("invitation-create"), {"lab": personas.lab_a.pk, **data}
    )
    assert response.status_code == 400
    assert response.context["invite_form"].errors[field]
    assert not Invitation.objects.exists()


def test_viewer_cannot_invite(personas):
    response = signed_in(personas.viewer_a).post(
        reverse("invitation-create"),
        {"lab": personas.lab_a.pk, "invitee": "outsider", "role": Role.ADMIN},
    )
    assert response.status_code == 403
    assert b"does not allow this" in response.content
    assert not Invitation.objects.exists()


def test_other_lab_admin_cannot_invite_to_lab_a(personas):
    response = signed_in(personas.admin_b).post(
        reverse("invitation-create"),
        {"lab": personas.lab_a.pk, "invitee": "outsider", "role": Role.ADMIN},
    )
    assert response.status_code == 404
    assert not Invitation.objects.exists()


def test_admin_changes_role(personas):
    target = membership(personas.viewer_a, personas.lab_a)
    response = signed_in(personas.admin_a).post(
        reverse("membership-role", args=[target.pk]), {"role": Role.RESEARCHER}, follow=True
    )
    assert response.status_code == 200
    target.refresh_from_db()
    assert target.role == Role.RESEARCHER
    assert "viewer_a is now researcher in Lab A." in texts(response)


def test_last_admin_cannot_demote_themselves(personas):
    own = membership(personas.admin_a, personas.lab_a)
    response = signed_in(personas.admin_a).post(
        reverse("membership-role", args=[own.pk]), {"role": Role.VIEWER}, follow=True
    )
    assert response.status_code == 200
    assert any("at least one admin" in text for text in texts(response))
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_bad_role_value_changes_nothing(personas):
    target = membership(personas.viewer_a, personas.lab_a)
    response = signed_in(personas.admin_a).post(
        reverse("membership-role", args=[target.pk]), {"role": "superuser"}
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_viewer_cannot_change_roles(personas):
    target = membership(personas.researcher_a, personas.lab_a)
    response = signed_in(personas.viewer_a).post(
        reverse("membership-role", args=[target.pk]), {"role": Role.ADMIN}
    )
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.RESEARCHER


def test_admin_removes_member(personas):
    target = membership(personas.reader_a, personas.lab_a)
    response = signed_in(personas.admin_a).post(
        reverse("membership-remove", args=[target.pk]), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("members")
    assert not Membership.objects.filter(pk=target.pk).exists()
    assert "reader_a removed from Lab A." in texts(response)


def test_viewer_cannot_remove_others_but_can_leave(personas):
    client = signed_in(personas.viewer_a)
    other = membership(personas.researcher_a, personas.lab_a)
    assert client.post(reverse("membership-remove", args=[other.pk])).status_code == 403
    assert Membership.objects.filter(pk=other.pk).exists()
    own = membership(personas.viewer_a, personas.lab_a)
    response = client.post(reverse("membership-remove", args=[own.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert not Membership.objects.filter(pk=own.pk).exists()


def test_last_admin_cannot_leave(personas):
    own = membership(personas.admin_b, personas.lab_b)
    response = signed_in(personas.admin_b).post(
        reverse("membership-remove", args=[own.pk]), follow=True
    )
    assert any("at least one admin" in text for text in texts(response))
    assert Membership.objects.filter(pk=own.pk).exists()


@pytest.mark.parametrize("route", ["membership-role", "membership-remove"])
def test_lab_b_admin_cannot_touch_lab_a_memberships(personas, route):
    target = membership(personas.viewer_a, personas.lab_a)
    response = signed_in(personas.admin_b).post(
        reverse(route, args=[target.pk]), {"role": Role.ADMIN}
    )
    assert response.status_code == 404
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_member_writes_are_post_only(personas):
    client = signed_in(personas.admin_a)
    target = membership(personas.viewer_a, personas.lab_a)
    assert client.get(reverse("invitation-create")).status_code == 405
    assert client.get(reverse("membership-remove", args=[target.pk])).status_code == 405


# --- API tokens --------------------------------------------------------------------------------


def test_tokens_page_lists_own_tokens_only(personas):
    api_token_create(user=personas.admin_a, name="mine")
    api_token_create(user=personas.admin_b, name="theirs")
    expired, _ = api_token_create(user=personas.admin_a, name="old", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    response = signed_in(personas.admin_a).get(reverse("tokens"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "mine" in html and "theirs" not in html
    assert "Expired" in html and "Active" in html
    form = response.context["form"]
    assert form["expires_in_days"].value() == 90  # settings.API_TOKEN_DEFAULT_DAYS


def test_token_secret_is_shown_once(personas, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 30
    client = signed_in(personas.reader_a)
    response = client.post(reverse("tokens"), {"name": "upload script", "expires_in_days": 30})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("cxr_")
    assert f'<code id="token-secret" class="secret">{secret}</code>' in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=personas.reader_a)
    assert token.name == "upload script" and secret not in token.key_hash
    assert abs(token.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    again = client.get(reverse("tokens"))
    assert secret not in again.content.decode() and "token-secret" not in again.content.decode()
    assert token.prefix in again.content.decode()
    me = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert me.status_code == 200 and me.json()["username"] == "reader_a"


def test_token_with_zero_days_never_expires(personas):
    signed_in(personas.admin_a).post(reverse("tokens"), {"name": "ci", "expires_in_days": 0})
    assert ApiToken.objects.get(name="ci").expires_at is None


@pytest.mark.parametrize(
    "data,field",
    [
        ({"name": "", "expires_in_days": 5}, "name"),
        ({"name": "n" * 101, "expires_in_days": 5}, "name"),
        ({"name": "ok", "expires_in_days": -1}, "expires_in_days"),
        ({"name": "ok", "expires_in_days": 3651}, "expires_in_days"),
        ({"name": "ok", "expires_in_days": "soon"}, "expires_in_days"),
    ],
)
def test_token_create_rejects_bad_input(personas, data, field):
    response = signed_in(personas.admin_a).post(reverse("tokens"), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert response.context["secret"] is None
    assert not ApiToken.objects.exists()


def test_token_revoke(personas):
    token, secret = api_token_create(user=personas.admin_a, name="old script")
    client = signed_in(personas.admin_a)
    response = client.post(reverse("token-revoke", args=[token.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Revoked" in response.content.decode()
    assert Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_cannot_revoke_someone_elses_token(personas):
    token, _ = api_token_create(user=personas.admin_a, name="a's")
    response = signed_in(personas.admin_b).post(reverse("token-revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_other_users_are_not_listed_in_foreign_lab(personas):
    # A user in two labs sees each lab's members only while that lab is current.
    extra = UserFactory(username="two_labs")
    MembershipFactory(user=extra, lab=personas.lab_a, role=Role.VIEWER)
    MembershipFactory(user=extra, lab=personas.lab_b, role=Role.VIEWER)
    client = signed_in(extra)
    client.post(reverse("lab-switch"), {"lab": personas.lab_b.pk})
    names = [m.user.username for m in client.get(reverse("members")).context["memberships"]]
    assert names == ["admin_b", "two_labs"]
