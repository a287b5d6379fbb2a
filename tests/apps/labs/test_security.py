"""Sign-in lockout, the API token throttle, security headers and the admin site."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from apps.labs.security import client_ip
from apps.labs.services import api_token_create
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[3]


def sign_in(username: str, password: str, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        reverse("login"), {"username": username, "password": password}
    )


# --- Sign-in lockout (django-axes) -----------------------------------------------------------


def test_thirty_wrong_passwords_are_not_all_answered_normally(personas):
    """The robustness issue: 30 wrong passwords in 10 s were all answered with the form."""
    answers = [sign_in("admin_a", f"guess-{i}").status_code for i in range(30)]
    assert answers[:9] == [200] * 9
    assert set(answers[10:]) == {429}
    locked = sign_in("admin_a", PASSWORD)  # even the right password, until the cool-off
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many sign-in attempts" in html and "15 minutes" in html
    assert "sessionid" not in locked.cookies


def test_one_account_guessed_from_many_addresses_is_locked(personas, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for i in range(3):
        sign_in("admin_a", "wrong", address=f"10.0.1.{i}")
    assert sign_in("admin_a", PASSWORD, address="10.0.1.99").status_code == 429
    assert sign_in("viewer_a", PASSWORD, address="10.0.1.99").status_code == 302


def test_a_spray_over_accounts_from_one_address_is_locked(personas, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("admin_a", "viewer_a", "reader_a"):
        sign_in(name, "Summer2026!", address="10.0.2.1")
    assert sign_in("researcher_a", PASSWORD, address="10.0.2.1").status_code == 429
    assert sign_in("researcher_a", PASSWORD, address="10.0.2.2").status_code == 302


def test_unknown_usernames_lock_like_known_ones(personas, settings):
    settings.AXES_FAILURE_LIMIT = 2
    answers = {}
    for net, name in enumerate(("admin_a", "no-such-user"), start=3):
        codes = [sign_in(name, "wrong", address=f"10.0.{net}.{i}").status_code for i in range(3)]
        body = sign_in(name, "wrong", address=f"10.0.{net}.9").content.decode()
        answers[name] = (codes, body.replace(name, "NAME"))
    assert answers["admin_a"] == answers["no-such-user"]


def test_force_login_and_good_sign_ins_are_unaffected(personas):
    client = Client()
    client.force_login(personas.viewer_a)
    assert client.get(reverse("home")).status_code == 200
    for _ in range(12):
        assert sign_in("viewer_a", PASSWORD).status_code == 302


def test_client_ip_trusts_only_the_configured_proxies(settings):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="1.1.1.1, 2.2.2.2")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.9.9.9"  # a forged header is ignored
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "2.2.2.2"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer entries than proxies: the socket's address
    assert client_ip(request) == "10.9.9.9"


# --- API token throttle ----------------------------------------------------------------------


def bearer(key: str, address: str = "10.1.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_failed_tokens_are_throttled_per_address(personas, settings):
    settings.API_TOKEN_FAILURE_LIMIT = 5
    _, good = api_token_create(user=personas.viewer_a, name="script")
    answers = [bearer(f"cxr_guess{i}").get("/api/v1/me/").status_code for i in range(8)]
    assert answers == [401] * 5 + [429] * 3
    throttled = bearer(good).get("/api/v1/me/")  # the right token too: no oracle left
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) == settings.API_TOKEN_FAILURE_WINDOW
    # Another address is not affected, nor is a browser session from the same address.
    assert bearer(good, address="10.1.0.2").get("/api/v1/me/").status_code == 200
    session = APIClient(REMOTE_ADDR="10.1.0.1")
    session.force_login(personas.viewer_a)
    assert session.get("/api/v1/me/").status_code == 200


def test_token_throttle_window_ends(personas, settings):
    from django.core.cache import cache

    settings.API_TOKEN_FAILURE_LIMIT = 2
    for _ in range(2):
        bearer("cxr_bad").get("/api/v1/me/")
    _, good = api_token_create(user=personas.viewer_a, name="script")
    assert bearer(good).get("/api/v1/me/").status_code == 429
    cache.clear()  # what the window's expiry does
    assert bearer(good).get("/api/v1/me/").status_code == 200


# --- Content-Security-Policy and Permissions-Policy ------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login/", "/", "/members/", "/tokens/", "/api/v1/me/", "/api/v1/docs/", "/nope/"]
)
def test_every_response_has_csp_and_permissions_policy(personas, path):
    client = Client()
    client.force_login(personas.admin_a)
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in csp.split(";") if part.strip()
    )
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    policy = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "usb", "payment"):
        assert f"{feature}=()" in policy


def _templates() -> list[Path]:
    return sorted((ROOT / "frontend" / "templates").rglob("*.html"))


def test_no_template_has_an_inline_script_or_event_handler():
    """Under ``script-src 'self'`` an inline script or ``onclick=`` would silently not run."""
    problems = []
    for path in _templates():
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "application/json" not in tag:
                problems.append(f"{path.relative_to(ROOT)}: {tag}")
        for handler in re.findall(r"<[^>]*\son[a-z]+\s*=", text):
            problems.append(f"{path.relative_to(ROOT)}: {handler[:60]}")
        if "javascript:" in text:
            problems.append(f"{path.relative_to(ROOT)}: javascript: URL")
    assert problems == []


def test_api_docs_run_no_inline_script(personas):
    client = Client()
    client.force_login(personas.admin_a)
    html = client.get("/api/v1/docs/").content.decode()
    tags = re.findall(r"<script\b[^>]*>", html)
    assert tags and all("src=" in tag for tag in tags)
    script = [t for t in tags if "docs/?script" in t or "?script" in t]
    assert script, tags
    src = re.search(r'src="([^"]+)"', script[0]).group(1).replace("&amp;", "&")
    response = client.get(src)
    assert response.status_code == 200 and "SwaggerUIBundle" in response.content.decode()


# --- The admin site: superusers only -------------------------------------------------------


def test_staff_without_superuser_gets_no_admin(db):
    staff = UserFactory(username="staffer", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client = Client()
    client.force_login(staff)
    for path in ("/admin/", "/admin/labs/apitoken/", "/admin/labs/lab/", "/admin/labs/user/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/")
    login_page = client.get("/admin/login/?next=/admin/")
    assert login_page.status_code == 200
    assert b"not authorized" in login_page.content


def test_superuser_gets_the_admin(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    for path in ("/admin/", "/admin/labs/apitoken/", "/admin/labs/invitation/"):
        assert client.get(path).status_code == 200, path
