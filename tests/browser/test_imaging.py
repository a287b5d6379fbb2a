"""Drag five files onto the upload page: they upload in one request, the library shows the
batch's progress while it is ingested (here on a thread of the live server's process), then the
five thumbnails."""

from __future__ import annotations

import base64
import threading

import numpy as np
import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from apps.imaging import services
from apps.imaging.models import Image
from apps.imaging.services import batches
from apps.labs.roles import Role
from tests.apps.imaging.dicoms import dicom_bytes, gradient, png_bytes
from tests.browser.conftest import DROP, sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser


def run_in_a_thread(batch_id: int) -> None:
    """What a worker would do, on a thread of the live server's process."""

    def run():
        try:
            services.upload_batch_run(batch_id=batch_id)
        finally:
            connection.close()

    threading.Thread(target=run, daemon=True).start()


@pytest.fixture(autouse=True)
def _ingest_on_a_thread(monkeypatch):
    # No worker here: the batch runs on a thread once the upload commits.
    monkeypatch.setattr(
        batches, "_enqueue", lambda bid: transaction.on_commit(lambda: run_in_a_thread(bid))
    )


def test_drag_five_files_see_the_batch_then_thumbnails(live_server, page):
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

    sign_in(page, f"{live_server.url}/login/?next=/images/upload/", "rita")
    expect(page.locator("#dropzone")).to_be_visible()
    page.get_by_label("Label for these images").select_option("CHF")

    data_transfer = page.evaluate_handle(DROP, payload)
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": data_transfer})

    # One request for the five files; then the library follows the batch.
    page.wait_for_url("**/images/?batch=*", timeout=30_000)
    panel = page.locator(".upload-batch")
    expect(panel).to_have_attribute("data-status", "done", timeout=30_000)
    expect(panel.locator(".batch-summary")).to_contain_text("5 of 5 files done: 5 stored")
    expect(panel.locator(".batch-file")).to_have_count(5)
    thumbs = page.locator("#image-grid .thumb img")
    expect(thumbs).to_have_count(5)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#image-grid .thumb img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    assert sorted(Image.objects.values_list("key", flat=True)) == [f"cxr{i}" for i in range(5)]
    assert set(Image.objects.values_list("label", flat=True)) == {"CHF"}

    # The library shows them; the image page draws the preview with a window control.
    page.get_by_role("link", name="Images", exact=True).click()
    expect(page.locator("#image-grid .thumb")).to_have_count(5)
    expect(page.locator(".upload-batch")).to_have_count(0)  # finished: no longer shown
    page.locator("#image-grid a").first.click()
    expect(page.locator("#viewer-canvas")).to_have_attribute("data-loaded", "true")
    page.locator("#window-width").fill("100")
    expect(page.locator("#viewer-canvas")).to_have_attribute("data-window", "128,100")
