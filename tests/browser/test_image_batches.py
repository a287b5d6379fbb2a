"""The library follows an upload batch: queued, then file by file, then done with the images.

The batch runs on a thread of the live server's process (what a worker would do), held at set
points so that the page is seen in each state, not just at the end.
"""

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


class HeldBatch:
    """Runs a batch on a thread when ``start`` is set, and pauses before file ``pause_at``
    until ``resume`` is set."""

    def __init__(self, pause_at: int):
        self.start, self.resume = threading.Event(), threading.Event()
        self.pause_at, self.calls, self.failed = pause_at, 0, []

    def ingest(self, real):
        def held(**kwargs):
            self.calls += 1
            if self.calls == self.pause_at:
                assert self.resume.wait(30), "the test never let the batch go on"
            return real(**kwargs)

        return held

    def enqueue(self, batch_id: int) -> None:
        def run():
            try:
                assert self.start.wait(30), "the test never started the batch"
                services.upload_batch_run(batch_id=batch_id)
            except BaseException as exc:  # reported by the test, not lost on the thread
                self.failed.append(exc)
            finally:
                connection.close()

        transaction.on_commit(lambda: threading.Thread(target=run, daemon=True).start())


def test_the_library_shows_the_batch_progress_then_the_images(live_server, page, monkeypatch):
    lab = LabFactory(name="Batch Lab", slug="batch-lab")
    user = UserFactory(username="bea")
    MembershipFactory(user=user, lab=lab, role=Role.RESEARCHER)
    held = HeldBatch(pause_at=4)
    monkeypatch.setattr(batches, "image_ingest", held.ingest(batches.image_ingest))
    monkeypatch.setattr(batches, "_enqueue", held.enqueue)
    files = [(f"img{i}.dcm", dicom_bytes(gradient(40, 32, seed=i))) for i in range(4)]
    files.insert(2, ("broken.dcm", b"not a dicom at all"))
    files.append(("small.png", png_bytes(gradient(24, 24, maximum=255, dtype=np.uint8, seed=9))))
    payload = [
        {"name": name, "type": "", "b64": base64.b64encode(data).decode()} for name, data in files
    ]

    sign_in(page, f"{live_server.url}/login/?next=/images/upload/", "bea")
    expect(page.locator("#dropzone")).to_be_visible()
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": page.evaluate_handle(DROP, payload)})

    # Answered at once: the library shows the queued batch, nothing ingested yet.
    page.wait_for_url("**/images/?batch=*")
    panel = page.locator(".upload-batch")
    expect(panel).to_have_attribute("data-status", "queued")
    expect(panel.locator(".batch-summary")).to_have_text(
        "0 of 6 files done: 0 stored, 0 already in the lab, 0 rejected."
    )
    expect(panel.locator(".batch-file")).to_have_count(6)
    expect(panel.locator("progress")).to_have_js_property("value", 0)
    expect(page.locator("#image-count")).to_have_text("0 images")

    # The worker starts; the page follows it file by file (held before the fourth ingest).
    held.start.set()
    expect(panel).to_have_attribute("data-status", "running")
    expect(panel.locator(".batch-summary")).to_have_text(
        "3 of 6 files done: 2 stored, 0 already in the lab, 1 rejected."
    )
    expect(panel.locator("progress")).to_have_js_property("value", 3)
    expect(panel.locator(".batch-file[data-status=running]")).to_contain_text("img2.dcm")
    broken = panel.locator(".batch-file[data-status=rejected]")
    expect(broken).to_contain_text("broken.dcm: is named .dcm but is not a DICOM file.")

    # The rest goes through; the page reloads on the finished batch and shows the images.
    held.resume.set()
    expect(panel).to_have_attribute("data-status", "done", timeout=30_000)
    expect(panel.locator(".batch-summary")).to_have_text(
        "6 of 6 files done: 5 stored, 0 already in the lab, 1 rejected."
    )
    expect(page.locator("#image-count")).to_have_text("5 images")
    expect(page.locator("#image-grid .thumb img")).to_have_count(5)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#image-grid .thumb img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    assert not held.failed, held.failed
    assert Image.objects.filter(lab=lab).count() == 5
    # A stored file links to its image page.
    panel.get_by_role("link", name="small.png").click()
    expect(page.locator("#viewer-canvas")).to_have_attribute("data-loaded", "true")
