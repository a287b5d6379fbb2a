"""The session page's "Image shown" field: an export that names no image (Gazepoint Analysis 6.x's
reduced export) is uploaded in the browser with the image chosen from the lab's keys, sent as the
upload's ``image_key``, and parsed into a reading of that image."""

from __future__ import annotations

import base64

import pytest
from django.db import transaction
from playwright.sync_api import expect

from apps.gaze import services
from apps.gaze.models import Reading, Recording
from apps.labs.roles import Role
from ml.synthetic import make_phantom
from ml.synthetic.writers import write_gazepoint_csv
from tests.apps.gaze.conftest import ingest_phantoms, simulated
from tests.browser.conftest import DROP, sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _parse_in_the_live_server(monkeypatch):
    monkeypatch.setattr(
        services,
        "_enqueue",
        lambda rid: transaction.on_commit(lambda: services.recording_parse(recording_id=rid)),
    )


@pytest.fixture
def lab_page(live_server, page, tmp_path):
    """A lab with two images and a session, its member signed in on the session page."""
    lab = LabFactory(name="Gaze Lab", slug="gaze-lab")
    user = UserFactory(username="rosa")
    MembershipFactory(user=user, lab=lab, role=Role.READER)
    phantoms = [make_phantom(lbl, seed=i + 1, height=300, width=250)
                for i, lbl in enumerate(("CHF", "Normal"))]  # fmt: skip
    images = ingest_phantoms(lab, None, phantoms, tmp_path)
    reader = services.reader_create(lab=lab, code="R1", user=user)
    session = services.reading_session_create(
        lab=lab, reader=reader, created_by=None, name="Gazepoint six",
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
    sign_in(page, f"{live_server.url}/login/?next=/sessions/{session.pk}/", "rosa")
    expect(page.locator("#gaze-dropzone")).to_be_visible()
    return page, phantoms, images, session


def drop(page, name: str, data: bytes) -> None:
    payload = [{"name": name, "b64": base64.b64encode(data).decode()}]
    page.dispatch_event(
        "#gaze-dropzone", "drop", {"dataTransfer": page.evaluate_handle(DROP, payload)}
    )


def test_image_key_chosen_in_the_browser_reaches_the_parse(lab_page, tmp_path):
    page, phantoms, images, session = lab_page
    target = images[1]
    # The lab's image keys are offered.
    options = page.locator("#gaze-image-keys option")
    expect(options).to_have_count(2)
    assert sorted(options.evaluate_all("els => els.map(e => e.value)")) == sorted(
        i.key for i in images
    )
    field = page.get_by_label("Image shown (for exports that name none)")
    field.fill(target.key)
    rs = simulated(phantoms[1:], 60)  # the file names no image: the field says which
    paths = write_gazepoint_csv(rs, tmp_path / "gp6", reduced=True)
    drop(page, "User1_all_gaze.csv", paths["all_gaze"].read_bytes())

    parse_row = page.locator("#gaze-uploads .parse-row")
    expect(parse_row).to_have_attribute("data-state", "done", timeout=30_000)
    rec = Recording.objects.get(session=session)
    assert rec.options == {"image_key": target.key}
    [reading] = Reading.objects.filter(recording=rec)
    assert reading.image == target and reading.fixation_count == len(rs[0].fixations)
    parse_row.get_by_role("link", name="See the result").click()
    expect(page.locator("#unmatched")).to_contain_text("Every stimulus matched")
    expect(page.locator(".scanpath")).to_have_count(1)


def test_image_key_merges_with_the_typed_options(lab_page, tmp_path):
    page, phantoms, images, session = lab_page
    page.get_by_label("Image shown (for exports that name none)").fill(images[0].key)
    page.locator("summary", has_text="Options").click()
    page.get_by_label("Reader options as JSON").fill('{"time_unit": "ms", "space": "image_px"}')
    drop(page, "gaze.csv", b"time,x,y\n0,10,10\n10,11,10\n20,12,11\n")
    upload_row = page.locator("#gaze-uploads .upload-row")
    expect(upload_row).to_have_attribute("data-state", "uploaded", timeout=30_000)
    rec = Recording.objects.get(session=session)
    assert rec.options == {"time_unit": "ms", "space": "image_px", "image_key": images[0].key}

    # Options that are not JSON are refused in the page, before anything is sent.
    page.get_by_label("Reader options as JSON").fill("{not json")
    drop(page, "gaze2.csv", b"time,x,y\n0,10,10\n10,11,10\n")
    rejected = page.locator("#gaze-uploads .upload-row").nth(1)
    expect(rejected).to_have_attribute("data-state", "rejected")
    expect(rejected).to_contain_text("not valid JSON")
    assert Recording.objects.filter(session=session).count() == 1
