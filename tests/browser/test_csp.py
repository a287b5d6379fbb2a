"""Every page works under the Content-Security-Policy: the console shows no violation.

A page that needed an inline script, an inline event handler, eval or a resource from another
origin would log "Refused to ... because it violates the following Content Security Policy
directive" in the console; this test visits the pages with their scripts running (Plotly's
scanpaths included) and listens for such messages.
"""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.gaze import services
from apps.labs.roles import Role
from apps.labs.services import invitation_create
from ml.synthetic import make_phantom
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import ingest_phantoms, simulated
from tests.browser.conftest import sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _recording(lab, user, tmp_path):
    phantoms = [make_phantom(lbl, seed=i + 1, height=300, width=250)
                for i, lbl in enumerate(("CHF", "Normal"))]  # fmt: skip
    images = ingest_phantoms(lab, None, phantoms, tmp_path)
    reader = services.reader_create(lab=lab, code="R1", user=user)
    session = services.reading_session_create(
        lab=lab, reader=reader, created_by=None, name="Morning session",
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
    asc = write_eyelink_asc(simulated(phantoms, 1000, n_fix=10), tmp_path / "r.asc")["asc"]
    data = asc.read_bytes()
    [recording] = services.recording_upload(
        session=session,
        uploaded_by=user,
        uploads=[services.Upload(file=io.BytesIO(data), filename="r.asc", size=len(data))],
        enqueue=False,
    )
    services.recording_parse(recording_id=recording.pk)
    return images, session, recording


def test_pages_run_under_the_csp_without_violations(live_server, page, tmp_path):
    lab = LabFactory(name="Gaze Lab", slug="gaze-lab")
    user = UserFactory(username="rosa")
    MembershipFactory(user=user, lab=lab, role=Role.ADMIN)
    images, session, recording = _recording(lab, user, tmp_path)
    _, link = invitation_create(
        lab=lab, actor=user, invitee="guest@example.org", role="viewer",
        build_url=lambda token: f"{live_server.url}/invitations/{token}/",
    )  # fmt: skip

    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    # Signed out: the login page, and an invitation's sign-up page.
    page.goto(link)
    expect(page.locator("#signup-form")).to_be_visible()
    sign_in(page, f"{live_server.url}/login/", "rosa")
    expect(page.locator("#lab-name")).to_have_text("Gaze Lab")

    header = page.request.get(f"{live_server.url}/").headers["content-security-policy"]
    assert "script-src 'self'" in header

    visits = [
        (reverse("members"), "#invite-form"),
        (reverse("tokens"), "#create-token-form"),
        (reverse("gaze-sessions"), "main"),
        (reverse("gaze-session", args=[session.pk]), "#gaze-dropzone"),
        (reverse("image-library"), "#image-grid"),
        (reverse("image-page", args=[images[0].pk]), "#viewer-canvas"),
        (reverse("image-upload"), "#dropzone"),
        ("/api/v1/docs/", "#swagger-ui .info"),
    ]
    for path, selector in visits:
        page.goto(f"{live_server.url}{path}")
        expect(page.locator(selector).first).to_be_visible()

    # The recording page: Plotly draws each reading's scanpath over its image.
    page.goto(f"{live_server.url}{reverse('gaze-recording', args=[recording.pk])}")
    figures = page.locator(".scanpath")
    expect(figures).to_have_count(2)
    expect(figures.first.locator("g.scatterlayer path.js-line")).to_have_count(1)
    expect(figures.first.locator("svg image").first).to_be_attached()
    page.goto(f"{live_server.url}{reverse('image-page', args=[images[0].pk])}")
    expect(page.locator("#viewer-canvas")).to_have_attribute("data-loaded", "true")

    # The scripts ran (app.js marks the page), and nothing was refused.
    assert page.evaluate("document.documentElement.classList.contains('js')")
    violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert violations == [], violations


def test_a_blocked_inline_script_would_be_caught(live_server, page):
    """The listener above does hear CSP violations (so its silence means something)."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{live_server.url}/login/")
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.append(s); }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__inline") is None
    assert any("Content Security Policy" in text for text in console), console
