"""Drag five files onto the upload page: each shows its progress, then its thumbnail."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from playwright.sync_api import expect

from apps.imaging.models import Image
from apps.labs.roles import Role
from tests.apps.imaging.dicoms import dicom_bytes, gradient, png_bytes
from tests.factories import PASSWORD, LabFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser

DROP = """(files) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  return dt;
}"""


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_drag_five_files_see_progress_then_thumbnails(live_server, page):
    lab = LabFactory(name="Chest Lab", slug="chest-lab")
    user = UserFactory(username="rita")
    MembershipFactory(user=user, lab=lab, role=Role.RESEARCHER)
    files = [
        {"name": f"cxr{i}.dcm", "type": "application/dicom",
         "data": dicom_bytes(gradient(64, 48, seed=i), bits_stored=12)}
        for i in range(3)
    ] + [
        {"name": "cxr3.png", "type": "image/png",
         "data": png_bytes(gradient(40, 40, maximum=255, dtype=np.uint8, seed=7))},
        {"name": "cxr4", "type": "", "data": dicom_bytes(gradient(32, 32, seed=9))},
    ]  # fmt: skip
    payload = [
        {"name": f["name"], "type": f["type"], "b64": base64.b64encode(f["data"]).decode()}
        for f in files
    ]

    page.goto(f"{live_server.url}/login/?next=/images/upload/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#dropzone")).to_be_visible()
    page.get_by_label("Label for these images").select_option("CHF")

    data_transfer = page.evaluate_handle(DROP, payload)
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": data_transfer})

    rows = page.locator("#upload-list .upload-row")
    expect(rows).to_have_count(5)
    expect(page.locator("#upload-list progress")).to_have_count(5)
    thumbs = page.locator("#upload-list img.upload-thumb")
    expect(thumbs).to_have_count(5, timeout=30_000)
    for i in range(5):
        row = rows.nth(i)
        expect(row).to_have_attribute("data-state", "done")
        expect(row.locator("progress")).to_have_js_property("value", 100)
        assert int(row.get_attribute("data-progress-events") or 0) >= 1  # progress was shown
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.upload-thumb')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    expect(page.locator("#upload-summary")).to_contain_text("5 stored")
    assert sorted(Image.objects.values_list("key", flat=True)) == [f"cxr{i}" for i in range(5)]
    assert set(Image.objects.values_list("label", flat=True)) == {"CHF"}

    # The library shows them; the image page draws the preview with a window control.
    page.get_by_role("link", name="Images", exact=True).click()
    expect(page.locator("#image-grid .thumb")).to_have_count(5)
    page.locator("#image-grid a").first.click()
    expect(page.locator("#viewer-canvas")).to_have_attribute("data-loaded", "true")
    page.locator("#window-width").fill("100")
    expect(page.locator("#viewer-canvas")).to_have_attribute("data-window", "128,100")
