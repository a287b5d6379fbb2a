"""The whole path of a lab in Chromium, from an empty lab, with pages only (no API call from the
test): upload images, add a reader, create a session, upload an export, change the geometry and
re-parse (following the live progress), leave a poor reading out of training, import labels
from a CSV with a preview, delete a recording. Then a viewer of the lab sees every page without
a button they may not use, and a form posted anyway with the page's CSRF token is refused (403).

The background work (an upload batch's ingest, a recording's parse) runs on one worker thread of
the live server's process, in the order it was queued, as a Celery worker would; a re-parse is
held until the page has shown it queued. Screenshots of each step go to ``<tmp_path>/screenshots``.
"""

from __future__ import annotations

import queue
import re
import threading

import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from apps.gaze import services as gaze_services
from apps.gaze.models import Reader, Reading, Recording
from apps.imaging.models import Image
from apps.imaging.services import batches, upload_batch_run
from apps.labs.roles import Role
from ml.synthetic import Radiologist, make_phantom, simulate_reading, write_dicom, write_png
from ml.synthetic.writers import write_eyelink_asc
from tests.browser.conftest import sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = {"cxr-chf": "CHF", "cxr-pneumonia": "Pneumonia", "cxr-normal": "Normal"}
SHORT = "cxr-normal"  # read with few fixations: poor once the lab asks for more
POST_FORMS = "main form[method=post]"  # the header's lab switcher and log-out are outside main


class Worker:
    """One background worker: runs queued jobs in order on its own thread, after the request
    that queued them commits. While ``go`` is clear, it waits before each job."""

    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.go = threading.Event()
        self.go.set()
        self.failed: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def enqueue(self, job, *args) -> None:
        transaction.on_commit(lambda: self.jobs.put((job, args)))

    def _run(self) -> None:
        while (item := self.jobs.get()) is not None:
            job, args = item
            try:
                assert self.go.wait(30), "the test never let the worker go on"
                job(*args)
            except BaseException as exc:  # reported by the test, not lost on the thread
                self.failed.append(exc)
            finally:
                connection.close()

    def stop(self) -> None:
        self.go.set()
        self.jobs.put(None)
        self.thread.join(30)


@pytest.fixture
def worker(monkeypatch):
    worker = Worker()
    monkeypatch.setattr(batches, "_enqueue", lambda pk: worker.enqueue(
        lambda: upload_batch_run(batch_id=pk)))  # fmt: skip
    monkeypatch.setattr(gaze_services, "_enqueue", lambda pk: worker.enqueue(
        lambda: gaze_services.recording_parse(recording_id=pk)))  # fmt: skip
    yield worker
    worker.stop()
    assert not worker.failed, worker.failed


def _files(folder):
    """Three phantom radiographs (two PNGs and a DICOM, each named by its key) and two EyeLink
    exports of reader R1 whose IMGLOAD messages name those keys: ``morning.asc`` reads two of
    them (``cxr-normal`` with only 4 fixations), ``extra.asc`` the third (a session holds one
    reading per image)."""
    images, phantoms = [], {}
    for i, (key, label) in enumerate(LABELS.items()):
        phantoms[key] = phantom = make_phantom(label, seed=i + 1, height=300, width=250)
        if key == "cxr-normal":
            images.append(write_dicom(phantom, folder / f"{key}.dcm", seed=i).path)
        else:
            images.append(write_png(phantom, folder / f"{key}.png"))

    def read(key: str, n_fix: int, seed: int):
        reader = Radiologist(name="R1", n_fixations=n_fix, off_image_probability=0.0)
        return simulate_reading(phantoms[key], reader, rate_hz=250, seed=seed, image_key=key)

    morning = [read("cxr-chf", 16, 1), read(SHORT, 4, 2)]
    exports = [
        write_eyelink_asc(morning, folder / "morning.asc", seed=1)["asc"],
        write_eyelink_asc([read("cxr-pneumonia", 16, 3)], folder / "extra.asc", seed=2)["asc"],
    ]
    return images, exports


def _message(page, text: str) -> None:
    expect(page.locator(".messages")).to_contain_text(text)


def test_a_lab_from_empty_to_labelled_readings_and_a_viewer_who_cannot_write(
    live_server, page, browser, worker, tmp_path
):
    lab = LabFactory(name="Chest Lab", slug="chest-lab")
    MembershipFactory(user=UserFactory(username="ada"), lab=lab, role=Role.ADMIN)
    MembershipFactory(user=UserFactory(username="vic"), lab=lab, role=Role.VIEWER)
    image_files, exports = _files(tmp_path / "files")
    shots = tmp_path / "screenshots"
    url = live_server.url
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)  # fmt: skip

    # 1. Upload three images to the empty lab: the library follows the batch, then shows them.
    sign_in(page, f"{url}/login/?next=/images/", "ada")
    expect(page.locator("#image-count")).to_have_text("0 images")
    page.get_by_role("link", name="Upload images").first.click()
    page.wait_for_url("**/images/upload/")  # loaded: upload.js listens to the file input
    page.set_input_files("#upload-files", [str(p) for p in image_files])
    page.wait_for_url("**/images/?batch=*")
    panel = page.locator(".upload-batch")
    expect(panel).to_have_attribute("data-status", "done", timeout=30_000)
    expect(panel.locator(".batch-summary")).to_contain_text("3 of 3 files done: 3 stored")
    expect(page.locator("#image-count")).to_have_text("3 images")
    keys = page.locator("#image-grid .thumb-key")
    expect(keys).to_have_count(3)
    assert sorted(keys.all_text_contents()) == sorted(LABELS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#image-grid .thumb img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    page.screenshot(path=str(shots / "01-images.png"), full_page=True)

    # 2. Add a reader: the readers page lists them.
    page.get_by_role("link", name="Readers", exact=True).click()
    expect(page.locator("#no-readers")).to_be_visible()
    form = page.locator("#reader-form")
    form.get_by_label("Code").fill("R1")
    form.get_by_label("Years of experience").fill("12")
    form.get_by_label("Specialty").fill("thoracic")
    form.get_by_role("button", name="Add reader").click()
    _message(page, "Reader R1 added.")
    row = page.locator("#reader-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("th")).to_have_text("R1")
    expect(row).to_contain_text("12 years")
    page.screenshot(path=str(shots / "02-readers.png"), full_page=True)

    # 3. Create a session of R1 on the display the exports were recorded on.
    page.get_by_role("link", name="Sessions", exact=True).click()
    form = page.locator("#session-form")
    form.get_by_label("Reader").select_option(label="R1")
    form.get_by_label("Name").fill("Morning session")
    form.get_by_label("Screen width mm").fill("531")
    form.get_by_label("Screen height mm").fill("299")
    form.get_by_label("Viewing distance mm").fill("650")
    form.get_by_role("button", name="Create session").click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+/$"))
    _message(page, "created")
    expect(page.locator("h1")).to_have_text("Morning session")
    expect(page.locator("#session-meta")).to_contain_text("531.0×299.0 mm, at 650.0 mm")
    expect(page.locator("#no-recordings")).to_be_visible()
    session_url = page.url
    page.wait_for_load_state()  # session.js listens to the file input

    # 4. Upload the two exports: each parses; the page lists both recordings done, with readings.
    page.set_input_files("#gaze-files", [str(p) for p in exports])
    expect(page.locator("#gaze-uploads .upload-row")).to_have_attribute(
        "data-state", "uploaded", timeout=30_000
    )
    parses = page.locator("#gaze-uploads .parse-row")
    expect(parses).to_have_count(2)
    for i in range(2):
        expect(parses.nth(i)).to_have_attribute("data-state", "done", timeout=30_000)
    page.screenshot(path=str(shots / "03-uploaded.png"), full_page=True)
    page.reload()
    recordings = page.locator("#recording-list .recording-row")
    expect(recordings).to_have_count(2)
    for name, n in (("morning.asc", 2), ("extra.asc", 1)):
        rec = recordings.filter(has_text=name)
        expect(rec).to_have_attribute("data-status", "done")
        expect(rec).to_contain_text(f"eyelink_asc · {n} reading{'s' if n > 1 else ''}")
    readings = page.locator("#session-readings tbody tr")
    expect(readings).to_have_count(3)
    expect(readings.locator(".training-state")).to_have_text(["Used for training"] * 3)
    first_ids = set(Reading.objects.values_list("pk", flat=True))

    # 5. Change the geometry: the page offers to re-parse; the re-parse shows its progress live
    # (held queued until seen), then both recordings are done again with new readings.
    page.locator("#edit-session summary").click()
    page.get_by_label("Viewing distance (mm)").fill("700")
    page.get_by_role("button", name="Save session").click()
    _message(page, "Session saved.")
    expect(page).to_have_url(re.compile(r"\?reparse=offer#reparse$"))
    expect(page.locator("#session-meta")).to_contain_text("at 700.0 mm")
    offer = page.locator("#reparse")
    expect(offer).to_contain_text("The display geometry or fixation detection changed.")
    page.screenshot(path=str(shots / "04-reparse-offer.png"), full_page=True)
    worker.go.clear()
    offer.get_by_role("button", name="Re-parse 2 recordings").click()
    _message(page, "2 recordings queued for a new parse.")
    expect(page.locator("#reparse")).to_have_count(0)
    watched = page.locator("#recording-list .recording-row.parse-watch")
    expect(watched).to_have_count(2)
    expect(watched.locator(".status")).to_have_text(["Queued", "Queued"])
    expect(watched.locator("progress")).to_have_count(2)
    page.screenshot(path=str(shots / "05-reparse-queued.png"), full_page=True)
    worker.go.set()
    for i in range(2):
        expect(recordings.nth(i)).to_have_attribute("data-status", "done", timeout=30_000)
        expect(recordings.nth(i).locator(".status")).to_have_text("Done")
        expect(recordings.nth(i).locator("progress")).to_have_js_property("value", 100)
    done = page.locator("#parse-done")
    expect(done).to_be_visible()
    page.screenshot(path=str(shots / "06-reparse-done.png"), full_page=True)
    done.get_by_role("link", name="reload the page").click()
    expect(readings).to_have_count(3)
    assert not first_ids & set(Reading.objects.values_list("pk", flat=True))  # parsed anew
    assert set(Recording.objects.values_list("status", flat=True)) == {"done"}

    # 6. Leave a poor reading out of training. The parse grades every simulated reading good
    # (and would leave a poor one out by itself), so the admin makes the lab stricter on
    # /settings/ (at least 10 fixations) and re-grades: the short reading of cxr-normal becomes
    # poor, and its training flag, which still followed its grade, leaves training with it.
    # Someone then puts it back by hand ("Use"), and the bulk form by grade leaves every poor
    # reading of the session out again: both of the page's training controls are used.
    page.goto(f"{url}/settings/")
    page.get_by_label("Fewest fixations (fewer: poor)").fill("10")
    page.get_by_role("button", name="Save thresholds").click()
    _message(page, "Quality thresholds saved.")
    expect(page.locator("#regrade-offer")).to_be_visible()
    page.get_by_role("button", name="Re-grade 3 readings").click()
    _message(page, "→ poor: 1")
    _message(page, "1 reading(s) followed their new grade into or out of training.")
    expect(page.locator("#regrade")).to_contain_text("1 poor")
    page.screenshot(path=str(shots / "07-regraded.png"), full_page=True)

    page.goto(session_url)
    poor = readings.filter(has=page.get_by_role("link", name=SHORT, exact=True))
    expect(poor.locator(".grade-poor")).to_have_text("Poor")
    assert int(poor.locator("td").nth(2).inner_text()) < 10  # its fixations
    expect(poor.locator(".training-state")).to_have_text("Left out of training")
    poor.get_by_role("button", name=f"Use the reading of {SHORT} for training").click()
    _message(page, f"Reading of images/{SHORT}.png used for training.")  # as the export names it
    expect(poor.locator(".training-state")).to_have_text("Used for training")
    bulk = page.locator("#bulk-training-form")
    bulk.get_by_label("Readings graded").select_option("poor")
    bulk.get_by_label("Set them to").select_option("0")
    bulk.get_by_role("button", name="Apply").click()
    _message(page, "All 1 poor reading of this session are left out of training (1 changed).")
    expect(poor.locator(".training-state")).to_have_text("Left out of training")
    expect(readings.locator(".training-state.left-out")).to_have_count(1)
    page.screenshot(path=str(shots / "08-left-out.png"), full_page=True)
    assert Reading.objects.get(image__key=SHORT).use_for_training is False

    # 7. Import the labels from a CSV: the preview lists the changes and writes nothing; after
    # the apply, the library and the image page show the new labels.
    sheet = tmp_path / "files" / "labels.csv"
    rows = "".join(f"{key},{label}\n" for key, label in LABELS.items())
    sheet.write_text(f"key,label\n{rows}not-in-this-lab,CHF\n")
    page.get_by_role("link", name="Images", exact=True).click()
    page.get_by_role("link", name="Import labels (CSV)").click()
    page.get_by_label("CSV file").set_input_files(str(sheet))
    page.get_by_role("button", name="Preview the changes").click()
    expect(page.locator("#preview-rows")).to_have_text("4")
    expect(page.locator("#preview-changes")).to_have_text("3")
    expect(page.locator("#preview-unknown")).to_have_text("1")
    expect(page.locator("#unknown-keys")).to_have_text("not-in-this-lab")
    for key, label in LABELS.items():
        change = page.locator(f"#change-table tr[data-key='{key}']")
        expect(change.locator(".old-label")).to_have_text("(none)")
        expect(change.locator(".new-label")).to_have_text(label)
    page.screenshot(path=str(shots / "09-labels-preview.png"), full_page=True)
    assert set(Image.objects.values_list("label", flat=True)) == {""}  # nothing written yet
    page.get_by_role("button", name="Apply 3 changes").click()
    _message(page, "3 image(s) changed, 0 unchanged, 1 key(s) naming no image.")
    thumbs = page.locator("#image-grid .thumb")
    for key, label in LABELS.items():
        expect(thumbs.filter(has_text=key).locator(".badge")).to_have_text(label)
    page.get_by_role("link", name="cxr-chf").click()
    expect(page.locator("#image-key")).to_have_text("cxr-chf")
    expect(page.get_by_label("Label", exact=True)).to_have_value("CHF")
    expect(page.locator("#image-readings tbody tr")).to_have_count(1)
    expect(page.locator("#image-readings")).to_contain_text("R1")
    page.screenshot(path=str(shots / "10-image-labelled.png"), full_page=True)

    # 8. Delete the extra recording from its page: it is gone with its reading.
    page.goto(session_url)
    page.locator("#recording-list").get_by_role("link", name="extra.asc").click()
    expect(page.locator("h1")).to_have_text("extra.asc")
    expect(page.locator("#quality-report")).to_contain_text("Grade")
    expect(page.locator(".scanpath g.scatterlayer path.point").first).to_be_attached()  # Plotly
    page.screenshot(path=str(shots / "11-recording.png"), full_page=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))  # the fixture accepts it
    page.get_by_role("button", name="Delete recording").click()
    _message(page, "Recording extra.asc deleted.")
    assert dialogs and dialogs[-1].startswith("Delete the recording extra.asc with its 1 reading")
    expect(page).to_have_url(session_url)
    expect(recordings).to_have_count(1)
    expect(recordings).to_contain_text("morning.asc")
    expect(readings).to_have_count(2)
    expect(page.locator("#session-readings")).not_to_contain_text("extra.asc")
    expect(page.locator("#session-readings")).not_to_contain_text("cxr-pneumonia")
    page.screenshot(path=str(shots / "12-recording-deleted.png"), full_page=True)
    assert list(Recording.objects.values_list("original_name", flat=True)) == ["morning.asc"]
    assert Reading.objects.count() == 2
    assert failed == [], failed

    # 9. A viewer of the lab sees the same pages with no button they may not use.
    _viewer(browser, url, session_url, shots)
    print(f"Screenshots: {shots}")


def _viewer(browser, url: str, session_url: str, shots) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _viewer_pages(page, url, session_url, shots)
    except BaseException:
        page.screenshot(path=str(shots / "viewer-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the viewer's pages: {errors}"


def _viewer_pages(page, url: str, session_url: str, shots) -> None:
    image = Image.objects.get(key="cxr-chf")
    recording = Recording.objects.get()
    reading = Reading.objects.get(image=image)

    def no_writes(path: str, shot: str) -> None:
        page.goto(f"{url}{path}")
        expect(page.locator("main h1").first).to_be_visible()
        expect(page.locator(POST_FORMS)).to_have_count(0)
        page.screenshot(path=str(shots / f"viewer-{shot}.png"), full_page=True)

    sign_in(page, f"{url}/login/?next=/images/", "vic")
    no_writes("/images/", "images")
    expect(page.locator("#image-count")).to_have_text("3 images")
    expect(page.get_by_role("link", name="Upload images")).to_have_count(0)
    expect(page.get_by_role("link", name="Import labels (CSV)")).to_have_count(0)

    no_writes("/images/upload/", "upload")
    expect(page.locator("#upload-refused")).to_be_visible()
    expect(page.locator("#upload-form, #dropzone")).to_have_count(0)

    no_writes(f"/images/{image.pk}/", "image")
    expect(page.locator("#image-label-text")).to_have_text("CHF")
    expect(page.locator("#label-form, #delete-card")).to_have_count(0)
    expect(page.locator("#image-readings tbody tr")).to_have_count(1)

    no_writes("/images/classes/", "classes")
    expect(page.locator("#class-table tbody tr")).to_have_count(3)
    expect(page.locator("#class-add-form")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Rename|Remove"))).to_have_count(0)

    no_writes("/images/labels/", "labels")
    expect(page.locator("#labels-refused")).to_be_visible()
    expect(page.locator("#labels-form")).to_have_count(0)

    no_writes("/readers/", "readers")
    expect(page.locator("#reader-table tbody th")).to_have_text("R1")
    expect(page.locator("#reader-form")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit reader R1")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete reader R1")).to_have_count(0)

    no_writes("/sessions/", "sessions")
    expect(page.get_by_role("link", name="Morning session")).to_be_visible()
    expect(page.locator("#session-form")).to_have_count(0)

    no_writes(session_url.removeprefix(url), "session")
    expect(page.locator("#session-readings tbody tr")).to_have_count(2)
    expect(page.locator("#session-readings .training-state.left-out")).to_have_count(1)
    writes = (
        "#edit-session, #session-delete, #session-reparse, #gaze-upload, #gaze-dropzone, "
        "#bulk-training-form, .training-toggle, .row-actions"
    )
    expect(page.locator(writes)).to_have_count(0)

    no_writes(f"/recordings/{recording.pk}/", "recording")
    expect(page.locator("#quality-report")).to_be_visible()
    expect(page.locator(".scanpath")).to_have_count(2)
    expect(page.locator(".scanpath g.scatterlayer path.point").first).to_be_attached()
    expect(page.locator("#recording-actions, .training-toggle")).to_have_count(0)

    no_writes("/settings/", "settings")
    expect(page.locator("#thresholds-table")).to_be_visible()
    expect(page.locator("#thresholds-table tr[data-threshold='min_fixations']")).to_contain_text(
        "this lab"
    )
    expect(page.locator("main button")).to_have_count(0)

    # Posted anyway, with the CSRF token of the page (the forms' own URLs): each is refused with
    # the role's reason (not a CSRF failure), and nothing changed.
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    headers = {"Referer": f"{url}/settings/"}
    posts = [
        (f"/recordings/{recording.pk}/delete/", {}),
        (f"/readings/{reading.pk}/training/", {"use_for_training": "0"}),
        (f"/images/{image.pk}/delete/", {}),
        ("/readers/", {"code": "R2"}),
        (f"/sessions/{recording.session_id}/reparse/", {}),
        ("/settings/regrade/", {"lab": str(image.lab_id)}),
    ]
    for path, data in posts:
        answer = page.request.post(
            f"{url}{path}", form={"csrfmiddlewaretoken": token, **data}, headers=headers
        )
        assert answer.status == 403, (path, answer.status)
        body = answer.text()
        assert "Not allowed" in body and "CSRF" not in body, (path, body[:500])
    assert Recording.objects.filter(pk=recording.pk, status="done").exists()
    assert Reading.objects.get(pk=reading.pk).use_for_training is True
    assert Image.objects.filter(pk=image.pk).exists()
    assert list(Reader.objects.values_list("code", flat=True)) == ["R1"]

    # And a form built in the page by hand and submitted: the browser lands on the 403 page.
    with page.expect_response(f"{url}/recordings/{recording.pk}/delete/") as answer:
        page.evaluate(
            """([action, token]) => {
              const form = document.createElement("form");
              form.method = "post";
              form.action = action;
              const field = document.createElement("input");
              field.type = "hidden"; field.name = "csrfmiddlewaretoken"; field.value = token;
              form.append(field);
              document.body.append(form);
              form.submit();
            }""",
            [f"/recordings/{recording.pk}/delete/", token],
        )
    assert answer.value.status == 403
    expect(page.locator("main h1")).to_have_text("Not allowed")
    page.screenshot(path=str(shots / "viewer-403.png"), full_page=True)
    assert Recording.objects.filter(pk=recording.pk).exists()
