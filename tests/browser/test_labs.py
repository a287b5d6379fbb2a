"""A person in two labs signs in, switches lab, and creates, uses and revokes an API token;
an admin invites someone by e-mail, who joins with a new account through the link."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from apps.labs.models import Membership, User
from apps.labs.roles import Role
from tests.factories import PASSWORD, LabFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser


def call_me(base_url: str, secret: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/api/v1/me/", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_switch_lab_and_use_an_api_token(live_server, page):
    lab_a = LabFactory(name="Chest Lab", slug="chest-lab")
    lab_b = LabFactory(name="Gaze Lab", slug="gaze-lab")
    user = UserFactory(username="dana", first_name="Dana", last_name="Reid")
    MembershipFactory(user=user, lab=lab_a, role=Role.ADMIN)
    MembershipFactory(user=user, lab=lab_b, role=Role.READER)
    MembershipFactory(user=UserFactory(username="chest_colleague"), lab=lab_a, role=Role.VIEWER)
    MembershipFactory(user=UserFactory(username="gaze_colleague"), lab=lab_b, role=Role.ADMIN)

    # Sign in: the first lab (by name) is current.
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#lab-name")).to_have_text("Chest Lab")
    expect(page.locator("#lab-role")).to_have_text("Admin")

    # Switch lab on the members page: the switcher submits on change and comes back here.
    page.get_by_role("link", name="Members", exact=True).click()
    members = page.locator("#members-table tbody th")
    expect(members).to_contain_text(["chest_colleague", "dana"])
    page.get_by_label("Lab", exact=True).select_option(label="Gaze Lab")
    expect(page.locator("#members-lab")).to_have_text("Gaze Lab")
    expect(page).to_have_url(f"{live_server.url}/members/")
    expect(members).to_have_count(2)
    expect(members).to_contain_text(["dana", "gaze_colleague"])
    expect(page.locator("#members-table")).not_to_contain_text("chest_colleague")
    expect(page.locator("#invite-form")).to_have_count(0)  # a reader here, not an admin
    expect(page.get_by_label("Lab", exact=True)).to_have_value(str(lab_b.pk))

    # Create a token and read its one-time secret.
    page.get_by_role("link", name="API tokens", exact=True).click()
    page.get_by_label("Name").fill("notebook")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("cxr_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()

    status, body = call_me(live_server.url, secret)
    assert status == 200, body
    assert body["username"] == "dana"
    assert {m["lab_name"] for m in body["memberships"]} == {"Chest Lab", "Gaze Lab"}

    # Revoke it in the browser: the API now refuses the secret.
    page.get_by_role("button", name="Revoke notebook").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    expect(page.locator("#tokens-table .token-status")).to_have_text("Revoked")
    expect(page.locator("#token-secret")).to_have_count(0)
    status, body = call_me(live_server.url, secret)
    assert status == 401, body


def sign_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_invite_by_email_and_join_with_a_new_account(live_server, page, browser):
    lab = LabFactory(name="Chest Lab", slug="chest-lab")
    MembershipFactory(user=UserFactory(username="dana"), lab=lab, role=Role.ADMIN)

    # The admin invites an address; the page shows the link once, and the invitation pending.
    sign_in(page, live_server.url, "dana")
    page.get_by_role("link", name="Members", exact=True).click()
    form = page.locator("#invite-form")
    form.get_by_label("E-mail or username").fill("new.reader@example.org")
    form.get_by_label("Role").select_option("researcher")
    form.get_by_role("button", name="Invite").click()
    link = page.locator("#invitation-link").inner_text().strip()
    assert link.startswith(f"{live_server.url}/invitations/")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    page.get_by_role("link", name="Members", exact=True).click()
    expect(page.locator("#invitations-table tbody th")).to_have_text(["new.reader@example.org"])
    expect(page.locator("#invitation-link")).to_have_count(0)

    # The invitee, in another browser, opens the link and creates an account.
    other = browser.new_context()
    invitee = other.new_page()
    errors: list[str] = []
    invitee.on("pageerror", lambda exc: errors.append(str(exc)))
    invitee.goto(link)
    expect(invitee.locator("#invitation-lab")).to_have_text("Chest Lab")
    expect(invitee.locator("#invitation-role")).to_have_text("researcher")
    invitee.get_by_label("Username").fill("nadia")
    invitee.locator("#id_password1").fill("x-ray-gaze-2026!")
    invitee.get_by_label("Password confirmation").fill("x-ray-gaze-2026!")
    invitee.get_by_role("button", name="Create account and join Chest Lab").click()
    expect(invitee.locator("#lab-name")).to_have_text("Chest Lab")
    expect(invitee.locator("#lab-role")).to_have_text("Researcher")
    expect(invitee.locator(".messages")).to_contain_text("You joined Chest Lab as researcher.")
    # A researcher sees usernames, not e-mail addresses.
    invitee.get_by_role("link", name="Members", exact=True).click()
    expect(invitee.locator("#members-table")).to_contain_text("dana")
    expect(invitee.locator("#members-table")).not_to_contain_text("@")
    # The link worked once.
    invitee.goto(link)
    expect(invitee.locator("#invitation-problem")).to_contain_text("already been used")
    other.close()
    assert not errors, errors
    nadia = User.objects.get(username="nadia")
    assert Membership.objects.get(user=nadia, lab=lab).role == Role.RESEARCHER

    # The admin's page now lists the new member and no pending invitation.
    page.reload()
    expect(page.locator("#members-table tbody th")).to_contain_text(["dana", "nadia"])
    expect(page.locator("#no-invitations")).to_be_visible()
