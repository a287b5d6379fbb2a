"""Drop an EyeLink ASC onto a session page: the upload and parse progress bars run, then the
result page shows the quality report and each reading's scanpath over its image (Plotly)."""

from __future__ import annotations

import base64

import pytest
from django.db import transaction
from playwright.sync_api import expect

from apps.gaze import services
from apps.gaze.models import Reading
from apps.labs.roles import Role
from ml.synthetic import make_phantom
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import ingest_phantoms, simulated
from tests.browser.conftest import DROP, sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _parse_in_the_live_server(monkeypatch):
    # No worker here: the parse runs in the live server's process once the upload commits.
    monkeypatch.setattr(
        services,
        "_enqueue",
        lambda rid: transaction.on_commit(lambda: services.recording_parse(recording_id=rid)),
    )


def test_upload_an_asc_watch_progress_see_quality_and_scanpath(live_server, page, tmp_path):
    lab = LabFactory(name="Gaze Lab", slug="gaze-lab")
    user = UserFactory(username="rosa")
    MembershipFactory(user=user, lab=lab, role=Role.READER)
    phantoms = [make_phantom(lbl, seed=i + 1, height=300, width=250)
                for i, lbl in enumerate(("CHF", "Normal"))]  # fmt: skip
    ingest_phantoms(lab, None, phantoms, tmp_path)
    reader = services.reader_create(lab=lab, code="R1", user=user)
    session = services.reading_session_create(
        lab=lab, reader=reader, created_by=None, name="Morning session",
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
    asc = write_eyelink_asc(simulated(phantoms, 1000, n_fix=10), tmp_path / "rosa.asc")["asc"]
    payload = [{"name": "rosa.asc", "b64": base64.b64encode(asc.read_bytes()).decode()}]

    sign_in(page, f"{live_server.url}/login/?next=/sessions/", "rosa")
    page.get_by_role("link", name="Morning session").click()
    expect(page.locator("#gaze-dropzone")).to_be_visible()

    page.dispatch_event(
        "#gaze-dropzone", "drop", {"dataTransfer": page.evaluate_handle(DROP, payload)}
    )
    upload_row = page.locator("#gaze-uploads .upload-row")
    expect(upload_row).to_have_attribute("data-state", "uploaded", timeout=30_000)
    expect(upload_row.locator("progress")).to_have_js_property("value", 100)
    parse_row = page.locator("#gaze-uploads .parse-row")
    expect(parse_row).to_have_attribute("data-state", "done", timeout=30_000)
    expect(parse_row.locator("progress")).to_have_js_property("value", 100)

    parse_row.get_by_role("link", name="See the result").click()
    expect(page.locator("#quality-report")).to_contain_text("Grade")
    expect(page.locator("#quality-report")).to_contain_text("eyelink_asc")
    expect(page.locator("#unmatched")).to_contain_text("Every stimulus matched")
    figures = page.locator(".scanpath")
    expect(figures).to_have_count(2)
    # Plotly drew the fixations (one marker each) and the scanpath line over the image.
    first = Reading.objects.get(pk=int(figures.first.get_attribute("data-reading")))
    points = figures.first.locator("g.scatterlayer path.point")
    expect(points.first).to_be_attached()
    on_image = first.fixations.filter(on_image=True).count()
    assert on_image <= points.count() <= first.fixation_count
    expect(figures.first.locator("g.scatterlayer path.js-line")).to_have_count(1)
    expect(figures.first.locator("svg image").first).to_be_attached()
    assert Reading.objects.filter(session=session).count() == 2
