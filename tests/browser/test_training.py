"""From the pages only: make a snapshot, start a training job, watch its progress bar move, and
cancel it (the worker's part runs on threads of the live server's process)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from apps.datasets import services as datasets
from apps.labs.roles import Role
from apps.training import services as training
from tests.apps.datasets.objects import lab_with_data
from tests.browser.conftest import sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _on_a_thread(fn):
    """What a worker would do, after the request's transaction commits, on a thread."""

    def enqueue(pk: int) -> None:
        def run():
            try:
                fn(pk)
            finally:
                connection.close()

        transaction.on_commit(lambda: threading.Thread(target=run, daemon=True).start())

    return enqueue


@pytest.fixture(autouse=True)
def _workers(monkeypatch, settings, tmp_path):
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    settings.VAR_DIR = tmp_path / "var"
    settings.TRAINING_BATCH_PAUSE_S = 0.25  # slow enough to watch, and to cancel mid-run
    monkeypatch.setattr(
        datasets, "_enqueue", _on_a_thread(lambda pk: datasets.snapshot_build(snapshot_id=pk))
    )
    monkeypatch.setattr(training, "_enqueue", _on_a_thread(lambda pk: training.job_run(job_id=pk)))


def test_snapshot_then_training_then_cancel_from_the_pages(live_server, page, tmp_path):
    lab = LabFactory(name="Train Lab", slug="train-lab")
    user = UserFactory(username="tess")
    MembershipFactory(user=user, lab=lab, role=Role.RESEARCHER)
    lab_with_data(lab, user, per_class=(4, 4, 4))

    sign_in(page, f"{live_server.url}/login/?next=/datasets/", "tess")
    page.get_by_label("Name").fill("first snapshot")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Width").fill("64")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("body")).to_contain_text("Ready", timeout=60_000)
    page.screenshot(path=str(tmp_path / "snapshot.png"), full_page=True)

    page.goto(f"{live_server.url}/training/")
    page.get_by_label("Snapshot").select_option(label="first snapshot")
    page.get_by_label("Epochs").fill("40")
    page.get_by_label("Base channels").fill("4")
    page.get_by_role("button", name="Queue the job").click()
    bar = page.locator("#job-status .job-progress")
    expect(bar).to_be_visible()
    expect(page.locator("#job-status")).to_have_attribute("data-status", "running", timeout=30_000)
    first = float(bar.get_attribute("value") or 0)
    page.wait_for_function(
        f"() => Number(document.querySelector('#job-status .job-progress').value) > {first}",
        timeout=60_000,
    )  # the bar moves without the person reloading
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)

    page.locator("#job-cancel").click()
    expect(page.locator("#job-status")).to_have_attribute(
        "data-status", "cancelled", timeout=20_000
    )
    page.screenshot(path=str(tmp_path / "cancelled.png"), full_page=True)
