"""The whole platform end to end in Chromium, through the pages only, against a real running
stack: a fresh database (PostgreSQL and the suite's Redis where they answer, else the embedded
defaults), Django's server and one Celery worker process for both queues (``running_stack``).

From a lab with no data, an admin signs in; uploads twelve phantom DICOMs and follows the batch
to its end; imports their labels; adds two readers with a session each; uploads an EyeLink ASC
and a Tobii Pro Lab TSV export of their gaze (written by ``ml.synthetic``) and reads a
recording's quality report; makes a 64 x 64 snapshot; trains a model from the training page,
watching its progress bar move without a reload; opens the automatic evaluation's dashboard and
gallery; trains a second model and compares the two evaluations; and sets the ``production``
alias, which the home page then shows. No JavaScript error or console error on any page.

A full-page screenshot of each step goes to ``$E2E_SCREENSHOTS`` (default
``var/screenshots/end-to-end/`` under the repository root), named ``NN-step-name.png``; the
folder's old PNGs are removed first.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.e2e_data import SCREEN, LabFiles, lab_files
from tests.e2e.stack import postgres_server, running_stack, scratch_postgres, stack_broker

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHOTS = ROOT / "var" / "screenshots" / "end-to-end"
USERNAME, PASSWORD = "stack-admin", "stack-pass-2026"  # made by running_stack
SNAPSHOT = "e2e snapshot"
WORK = 240_000  # ms: the longest wait for the worker (a parse, a build, a job, an evaluation)


def screenshots_folder() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or DEFAULT_SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def _database() -> contextlib.AbstractContextManager[str | None]:
    """A scratch PostgreSQL database where a server answers (and always under CI), else None:
    the stack's embedded SQLite."""
    try:
        base = postgres_server()
    except pytest.skip.Exception:
        return contextlib.nullcontext(None)
    return scratch_postgres(base)


class Visit:
    """The browser of one lab member: the page, the screenshots, and every JavaScript error,
    console error and failed response seen on any page."""

    def __init__(self, page, url: str, shots: Path) -> None:
        self.page, self.url, self.shots = page, url, shots
        self.count = 0
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("response", self._response)
        page.on("dialog", lambda dialog: dialog.accept())

    def _console(self, message) -> None:
        where = message.location.get("url", "") if message.location else ""
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({where})")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.request.method} {response.url}")

    def shot(self, name: str) -> Path:
        """A full-page screenshot of the step, numbered in order."""
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def nav(self, name: str) -> None:
        self.page.locator("header nav").get_by_role("link", name=name, exact=True).click()

    def message(self, text: str) -> None:
        expect(self.page.locator(".messages")).to_contain_text(text)


def test_a_lab_from_sign_in_to_a_production_model(browser, tmp_path):
    shots = screenshots_folder()
    files = lab_files(tmp_path / "files")
    # A batch pause: a job's epochs take long enough to watch the bar move between polls.
    env = {"TRAINING_BATCH_PAUSE_S": "1.0"}
    with (
        _database() as database,
        running_stack(tmp_path / "stack", database_url=database, broker_url=stack_broker(),
                      labels=(), sessions=0, extra_env=env) as stack,
    ):  # fmt: skip
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        visit = Visit(context.new_page(), stack.url, shots)
        try:
            _walk(visit, files)
        except BaseException:
            visit.page.screenshot(path=str(shots / "failure.png"), full_page=True)
            print(stack.logs())
            raise
        finally:
            context.close()
        assert not visit.errors, "\n".join(visit.errors)
    print(f"Screenshots: {shots}")


def _walk(visit: Visit, files: LabFiles) -> None:
    _sign_in(visit)
    _upload_images(visit, files)
    _import_labels(visit, files)
    recordings = _readers_sessions_and_exports(visit, files)
    _quality_report(visit, recordings, n_images=len(files.dicoms))
    _snapshot(visit, n_images=len(files.dicoms))
    first = _train(visit, "first model", seed=0, watch=True)
    evaluation = _evaluation(visit, first, n_test=6)
    _gallery(visit, evaluation, n_test=6)
    second = _train(visit, "second model", seed=1, watch=False)
    _evaluation(visit, second, n_test=6)
    _compare(visit, first, second)
    _production(visit, first, files)


# --- 1. Sign in -----------------------------------------------------------------------------
def _sign_in(visit: Visit) -> None:
    page = visit.page
    page.goto(f"{visit.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#lab-name")).to_have_text("Stack Lab")
    expect(page.locator("#lab-role")).to_have_text("Admin")
    counts = page.locator("#lab-counts")
    for what in ("images", "readers", "sessions", "readings", "versions"):
        expect(counts.locator(f"[data-count='{what}']")).to_have_text("0")
    expect(page.locator("#next-step")).to_contain_text("Upload chest X-rays")
    visit.shot("log-in")


# --- 2. Upload the DICOMs and follow the batch ----------------------------------------------
def _upload_images(visit: Visit, files: LabFiles) -> None:
    page, n = visit.page, len(files.dicoms)
    visit.nav("Images")
    expect(page.locator("#image-count")).to_have_text("0 images")
    page.get_by_role("link", name="Upload images").first.click()
    page.wait_for_url("**/images/upload/")
    expect(page.locator("h1")).to_have_text("Upload images to Stack Lab")
    page.set_input_files("#upload-files", [str(p) for p in files.dicoms])
    page.wait_for_url("**/images/?batch=*")
    panel = page.locator(".upload-batch")
    expect(panel.locator(".batch-progress")).to_be_attached()
    expect(panel).to_have_attribute("data-status", "done", timeout=WORK)
    expect(panel.locator(".batch-state")).to_have_text("Done")
    expect(panel.locator(".batch-summary")).to_have_text(
        f"{n} of {n} files done: {n} stored, 0 already in the lab, 0 rejected."
    )
    expect(panel.locator(".batch-file[data-status='created']")).to_have_count(n)
    assert panel.locator(".batch-progress").evaluate("(bar) => bar.value === bar.max")
    expect(page.locator("#image-count")).to_have_text(f"{n} images")
    keys = page.locator("#image-grid .thumb-key")
    expect(keys).to_have_count(n)
    assert sorted(keys.all_text_contents()) == sorted(files.labels)
    expect(page.locator("#image-grid .badge").filter(has_text="unlabelled")).to_have_count(n)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#image-grid .thumb img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    visit.shot("upload-dicoms")


def _import_labels(visit: Visit, files: LabFiles) -> None:
    page, n = visit.page, len(files.labels)
    page.get_by_role("link", name="Import labels (CSV)").click()
    page.get_by_label("CSV file").set_input_files(str(files.labels_csv))
    page.get_by_role("button", name="Preview the changes").click()
    expect(page.locator("#preview-rows")).to_have_text(str(n))
    expect(page.locator("#preview-changes")).to_have_text(str(n))
    page.get_by_role("button", name=f"Apply {n} changes").click()
    visit.message(f"{n} image(s) changed")
    thumbs = page.locator("#image-grid .thumb")
    for key, label in files.labels.items():
        expect(thumbs.filter(has_text=key).locator(".badge")).to_have_text(label)
    visit.shot("labels-imported")


# --- 3 and 4. Readers, sessions, the EyeLink and Tobii exports -------------------------------
def _readers_sessions_and_exports(visit: Visit, files: LabFiles) -> list[str]:
    page, n = visit.page, len(files.dicoms)
    visit.nav("Readers")
    expect(page.locator("#no-readers")).to_be_visible()
    for export in files.exports:
        form = page.locator("#reader-form")
        form.get_by_label("Code").fill(export.code)
        form.get_by_label("Years of experience").fill(str(export.years))
        form.get_by_label("Specialty").fill(export.specialty)
        form.get_by_role("button", name="Add reader").click()
        visit.message(f"Reader {export.code} added.")
    rows = page.locator("#reader-table tbody tr")
    expect(rows.locator("th")).to_have_text([e.code for e in files.exports])
    expect(rows.first).to_contain_text("18 years")
    visit.shot("readers")

    recordings = []
    for export in files.exports:
        name = f"{export.code} reading ({export.tracker})"
        visit.nav("Sessions")
        form = page.locator("#session-form")
        form.get_by_label("Reader").select_option(label=export.code)
        form.get_by_label("Name").fill(name)
        form.get_by_label("Tracker make").fill(export.tracker)
        form.get_by_label("Sampling rate hz").fill(f"{export.rate_hz:g}")
        form.get_by_label("Screen width px").fill(str(SCREEN.screen_width_px))
        form.get_by_label("Screen height px").fill(str(SCREEN.screen_height_px))
        form.get_by_label("Screen width mm").fill(f"{SCREEN.screen_width_mm:g}")
        form.get_by_label("Screen height mm").fill(f"{SCREEN.screen_height_mm:g}")
        form.get_by_label("Viewing distance mm").fill(f"{SCREEN.viewing_distance_mm:g}")
        form.get_by_role("button", name="Create session").click()
        expect(page).to_have_url(re.compile(r"/sessions/\d+/$"))
        visit.message("created")
        expect(page.locator("h1")).to_have_text(name)
        expect(page.locator("#session-meta")).to_contain_text("1920×1080 px, 531.0×299.0 mm")
        expect(page.locator("#no-recordings")).to_be_visible()
        page.wait_for_load_state()  # session.js listens to the file input

        page.set_input_files("#gaze-files", str(export.path))
        expect(page.locator("#gaze-uploads .upload-row")).to_have_attribute(
            "data-state", "uploaded", timeout=60_000
        )
        parse = page.locator("#gaze-uploads .parse-row")
        expect(parse).to_have_count(1)
        expect(parse).to_have_attribute("data-state", "done", timeout=WORK)
        expect(parse.locator(".result-link")).to_have_text("See the result")
        page.reload()
        row = page.locator("#recording-list .recording-row")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-status", "done")
        expect(row).to_contain_text(f"{n} readings")
        expect(row.locator("a").first).to_have_text(export.path.name)
        readings = page.locator("#session-readings tbody tr")
        expect(readings).to_have_count(n)
        grades = readings.locator("td:nth-child(5) span").all_text_contents()
        assert set(grades) <= {"Good", "Usable"}, grades  # every reading can go to training
        visit.shot(f"{export.code.lower()}-{export.path.suffix[1:]}-export-parsed")
        recordings.append(page.url)
    return recordings


# --- 5. The quality report ------------------------------------------------------------------
def _quality_report(visit: Visit, sessions: list[str], n_images: int) -> None:
    page = visit.page
    visit.nav("Readers")
    rows = page.locator("#reader-table tbody tr")
    for i in range(2):
        expect(rows.nth(i).locator(".n-readings")).to_have_text(str(n_images))
        good = int(rows.nth(i).locator(".n-good").inner_text())
        usable = int(rows.nth(i).locator(".n-usable").inner_text())
        assert good + usable == n_images
    page.goto(sessions[0])
    page.locator("#recording-list .recording-row a").first.click()
    expect(page.locator("h1")).to_have_text("e2e_R1.asc")
    expect(page.locator("#recording-status")).to_have_text("Done")
    report = page.locator("#quality-report")
    expect(report.locator("h2")).to_have_text("Quality report")
    grade = report.locator("tr").filter(has=page.locator("th", has_text=re.compile("^Grade$")))
    expect(grade.locator("td")).to_have_text(re.compile(r"^(good|usable|poor)$"))
    expect(grade.locator("td")).to_have_class(re.compile(r"grade-(good|usable|poor)"))
    expect(page.locator("#unmatched")).to_contain_text("Every stimulus matched an image.")
    expect(page.locator(".reading-figures .reading")).to_have_count(n_images)
    expect(page.locator(".scanpath g.scatterlayer path.point").first).to_be_attached()
    visit.shot("quality-report")


# --- 6. The snapshot ------------------------------------------------------------------------
def _snapshot(visit: Visit, n_images: int) -> None:
    page = visit.page
    visit.nav("Datasets")
    form = page.locator("#snapshot-form")
    form.get_by_label("Name").fill(SNAPSHOT)
    form.get_by_label("Height").fill("64")
    form.get_by_label("Width").fill("64")
    form.get_by_role("button", name="Create snapshot").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    visit.message(f"Snapshot '{SNAPSHOT}' is being built.")
    status = page.locator("#snapshot-status")
    expect(status).to_have_attribute("data-status", "ready", timeout=WORK)
    expect(page.locator("#snapshot-state")).to_have_text("Ready")
    expect(page.locator("#snapshot-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    # The 2/1/7 rule on 4 images a class: 1 train, 1 validation and 2 test images each.
    totals = page.locator("#snapshot-counts tfoot th")
    expect(totals).to_have_text(["All", "3", "3", "6", str(n_images)])
    expect(page.locator("#snapshot-counts tbody tr")).to_have_count(3)
    expect(page.locator("#snapshot-choices")).to_contain_text("64 × 64")
    expect(page.locator("#snapshot-export")).to_be_visible()
    visit.shot("snapshot-ready")


# --- 7 and 10. Training ---------------------------------------------------------------------
def _train(visit: Visit, name: str, *, seed: int, watch: bool) -> str:
    """Queue a job from the training page; with ``watch``, follow its progress bar on the
    queue, which moves with no reload; wait on the job page until it succeeded. Returns the
    model version's page URL."""
    page = visit.page
    visit.nav("Training")
    form = page.locator("#training-form")
    form.get_by_label("Snapshot").select_option(label=SNAPSHOT)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Epochs").fill("2")
    form.get_by_label("Base channels").fill("4")
    form.get_by_label("Batch size").fill("1")
    form.get_by_label("Seed").fill(str(seed))
    form.get_by_role("button", name="Queue the job").click()
    expect(page).to_have_url(re.compile(r"/training/\d+/$"))
    visit.message(f"Training job '{name}' is queued.")
    job_url = page.url
    expect(page.locator("h1")).to_have_text(name)
    if watch:
        visit.nav("Training")
        row = page.locator("#training-jobs .training-row").filter(has_text=name)
        bar = row.locator(".job-progress")
        page.evaluate("() => { window.e2eNoReload = true; }")
        expect(row).to_have_attribute("data-status", "running", timeout=WORK)
        expect(row.locator(".job-state")).to_have_text("Running")
        first = float(bar.evaluate("(bar) => bar.value"))
        assert first < 2
        page.wait_for_function(
            """([name, first]) => {
              const row = [...document.querySelectorAll('#training-jobs .training-row')]
                .find((r) => r.textContent.includes(name));
              return window.e2eNoReload === true && row
                && Number(row.querySelector('.job-progress').value) > first;
            }""",
            arg=[name, first],
            timeout=WORK,
        )  # the bar moved, on the same page: no reload
        visit.shot("training-progress")
        expect(row).to_have_attribute("data-status", "succeeded", timeout=WORK)
        assert page.evaluate("() => window.e2eNoReload") is True
        assert float(bar.evaluate("(bar) => bar.value")) == 2.0
        row.get_by_role("link", name=name).click()
        expect(page).to_have_url(job_url)
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=WORK)
    expect(status.locator(".job-state")).to_have_text("Succeeded")
    expect(status.locator(".job-epoch")).to_have_text("2/2")
    expect(page.locator("#job-epochs tbody tr")).to_have_count(2)
    expect(page.locator("#curve-losses.js-plotly-plot")).to_be_attached()
    model = page.get_by_role("link", name=name, exact=True).last
    expect(model).to_have_attribute("href", re.compile(r"^/models/\d+/$"))
    visit.shot("training-succeeded" if watch else "second-training-succeeded")
    return visit.url + model.get_attribute("href")


# --- 8. The evaluation dashboard --------------------------------------------------------------
def _figures_drawn(page) -> int:
    """Every figure box of the page holds a drawn Plotly figure; returns how many."""
    boxes = page.locator(".eval-figure")
    count = boxes.count()
    assert count > 0
    expect(page.locator(".eval-figure.js-plotly-plot")).to_have_count(count)
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('.eval-figure')]"
        ".filter((box) => box.querySelector('.main-svg')).length"
    )
    assert drawn == count
    return count


def _evaluation(visit: Visit, model_url: str, n_test: int) -> str:
    """From the model card to its automatic evaluation on the test split, until it is done;
    returns the dashboard's URL."""
    page = visit.page
    page.goto(model_url)
    name = page.locator("h1").inner_text()
    expect(page.locator("#model-card")).to_contain_text(SNAPSHOT)
    page.locator("#model-evaluations").click()
    rows = page.locator("#evaluations .evaluation-row")
    expect(rows).to_have_count(1)
    expect(rows.locator(".badge")).to_have_text("automatic")
    expect(rows).to_contain_text(f"{SNAPSHOT} · test")
    rows.get_by_role("link", name=f"{name} (test split)").click()
    expect(page).to_have_url(re.compile(r"/evaluations/\d+/$"))
    url = page.url
    status = page.locator("#evaluation-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=WORK)
    expect(status.locator(".evaluation-state")).to_have_text("Succeeded")
    expect(page.locator("main")).to_contain_text(f"test split ({n_test} images)")
    expect(page.locator("#metric-table tr[data-row='model']")).to_be_visible()
    expect(page.locator("#classification-table tbody tr")).to_have_count(3)
    figures = _figures_drawn(page)
    assert figures >= 3  # the distributions, the ROC curves and the confusion matrix
    assert page.locator("#figure-roc.js-plotly-plot .main-svg").count() >= 1
    if name == "first model":
        visit.shot("evaluation-dashboard")
    return url


# --- 9. The gallery -----------------------------------------------------------------------------
def _gallery(visit: Visit, evaluation_url: str, n_test: int) -> None:
    page = visit.page
    page.goto(evaluation_url)
    page.set_viewport_size({"width": 1280, "height": 2600})  # every lazy panel in view
    page.locator("#link-gallery").click()
    expect(page).to_have_url(re.compile(r"/evaluations/\d+/gallery/$"))
    expect(page.locator("#gallery-heading")).to_contain_text(f"{n_test} images")
    items = page.locator("#gallery .gallery-item")
    expect(items).to_have_count(n_test)
    expect(items.first.locator(".panels img")).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.panels img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=60_000,
    )
    keys = items.evaluate_all("(items) => items.map((i) => i.dataset.key)")
    assert all(key.startswith("e2e-") for key in keys) and len(set(keys)) == n_test
    visit.shot("gallery")
    page.set_viewport_size({"width": 1280, "height": 900})


# --- 10. The comparison -----------------------------------------------------------------------
def _compare(visit: Visit, first: str, second: str) -> None:
    page = visit.page
    visit.nav("Evaluations")
    rows = page.locator("#evaluations .evaluation-row")
    expect(rows).to_have_count(2)
    expect(rows.locator(".evaluation-state")).to_have_text(["Succeeded", "Succeeded"])
    ids = rows.evaluate_all("(rows) => rows.map((r) => r.dataset.id)")
    for pk in ids:
        page.locator(f"#compare-{pk}").check()
    page.locator("#compare-selected").click()
    expect(page).to_have_url(re.compile(r"/evaluations/compare/\?ids=\d+&ids=\d+$"))
    expect(page.locator("h1")).to_have_text("Compare evaluations")
    expect(page.locator("#compare-error")).to_have_count(0)
    summary = page.locator("#compare-summary")
    expect(summary).to_be_visible()
    expect(summary.locator("thead th")).to_have_text(
        ["Metric", "second model (test split)", "first model (test split)"]
    )
    expect(page.get_by_role("heading", name="Paired tests")).to_be_visible()
    tests = page.locator(f"#compare-tests-{ids[1]}")  # the newest, topmost, is the reference
    expect(tests).to_be_visible()
    expect(tests.locator("thead th").first).to_have_text("Metric")
    lines = tests.locator("tbody tr")
    assert lines.count() >= 3
    expect(lines.first.locator("td").first).to_have_text("6")  # n: the shared test images
    _figures_drawn(page)
    visit.shot("compare")


# --- 11. The production alias and the home page -------------------------------------------------
def _production(visit: Visit, model_url: str, files: LabFiles) -> None:
    page = visit.page
    visit.nav("Training")
    page.get_by_role("link", name="model registry").click()
    versions = page.locator("#model-versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.locator("td:nth-child(2)")).to_have_text(["—", "—"])
    versions.get_by_role("link", name="first model").click()
    expect(page).to_have_url(model_url)
    form = page.locator("#alias-form")
    form.get_by_label("Set an alias").fill("production")
    form.get_by_role("button", name="Set", exact=True).click()
    visit.message("Alias 'production' now points at this model.")
    expect(page.locator("#model-card")).to_contain_text("production")
    visit.shot("production-alias")

    visit.nav("Home")
    production = page.locator("#production-model")
    expect(production.get_by_role("link", name="first model")).to_have_attribute(
        "href", model_url.removeprefix(visit.url)
    )
    expect(production).to_contain_text("On the test split of its snapshot (6 images")
    expect(page.locator("#headline-metrics tbody tr").first).to_be_visible()
    expect(page.locator("#headline-chart.js-plotly-plot .main-svg").first).to_be_attached()
    n = len(files.dicoms)
    expected = {"images": n, "readers": 2, "sessions": 2, "readings": 2 * n, "snapshots": 1,
                "jobs": 2, "versions": 2, "evaluations": 2}  # fmt: skip
    counts = page.locator("#lab-counts")
    for what, value in expected.items():
        expect(counts.locator(f"[data-count='{what}']")).to_have_text(str(value))
    visit.shot("home-production-model")
