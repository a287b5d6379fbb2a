"""The evaluation pages in Chromium: the dashboard, the readers, the regions, the gallery and a
comparison draw every Plotly figure with no console error; the gallery re-sorts from its sort
control; a table's CSV and a figure's PNG and SVG download. Screenshots of each page are kept."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from apps.evaluation import services
from apps.evaluation.models import Evaluation, EvaluationImage
from apps.imaging import services as imaging
from apps.labs.roles import Role
from tests.apps.evaluation.objects import evaluated, two_reader_snapshot, version_on
from tests.browser.conftest import sign_in
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _files(settings, tmp_path, monkeypatch):
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    settings.VAR_DIR = tmp_path / "var"

    def enqueue(pk: int) -> None:
        """What a worker would do, after the request's transaction commits, on a thread."""

        def run():
            try:
                time.sleep(1.5)  # long enough for the page to show the queued state first
                services.evaluation_run(evaluation_id=pk)
            finally:
                connection.close()

        transaction.on_commit(lambda: threading.Thread(target=run, daemon=True).start())

    monkeypatch.setattr(services, "_enqueue", enqueue)


def _figures_drawn(page) -> None:
    """Every figure box of the page holds a drawn Plotly figure."""
    boxes = page.locator(".eval-figure")
    count = boxes.count()
    assert count > 0
    expect(page.locator(".eval-figure.js-plotly-plot")).to_have_count(count)
    expect(page.locator(".eval-figure .main-svg").first).to_be_attached()
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('.eval-figure')]"
        ".filter((box) => box.querySelector('.main-svg')).length"
    )
    assert drawn == count


def _download(page, selector: str, tmp_path: Path) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.locator(selector).click()
    download = info.value
    target = tmp_path / "downloads" / download.suggested_filename
    download.save_as(str(target))
    return download.suggested_filename, target.read_bytes()


def _keys(page) -> list[str]:
    return page.locator(".gallery-item").evaluate_all("(items) => items.map((i) => i.dataset.key)")


def test_evaluation_pages_in_the_browser(live_server, page, tmp_path):
    lab = LabFactory(name="Eval Lab", slug="eval-lab")
    user = UserFactory(username="erin")
    MembershipFactory(user=user, lab=lab, role=Role.RESEARCHER)
    snapshot = two_reader_snapshot(lab, user)
    first = evaluated(snapshot, user)
    version = version_on(snapshot, user, seed=1)
    console: list[str] = []
    failed: list[str] = []

    def heard(message) -> None:
        if message.type == "error":
            console.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", heard)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)  # fmt: skip
    shots = tmp_path / "screenshots"

    # Start an evaluation from the list's form: its page shows it queued, follows its progress
    # without a reload, and shows the results when it ends.
    sign_in(page, f"{live_server.url}/login/?next=/evaluations/", "erin")
    page.get_by_label("Model version").select_option(str(version.pk))
    page.get_by_label("Name").fill("second opinion")
    page.screenshot(path=str(shots / "list.png"), full_page=True)
    page.get_by_role("button", name="Queue the evaluation").click()
    expect(page).to_have_url(re.compile(r"/evaluations/\d+/$"))
    second = Evaluation.objects.get(name="second opinion")
    assert page.url == f"{live_server.url}/evaluations/{second.pk}/"
    expect(page.locator("#evaluation-status .evaluation-state")).to_have_text("Queued")
    expect(page.locator("#metric-table")).to_be_visible(timeout=60_000)
    expect(page.locator("#evaluation-status .evaluation-state")).to_have_text("Succeeded")

    # The dashboard: 9 distributions, the ROC curves and the confusion matrix.
    page.goto(f"{live_server.url}/evaluations/{first.pk}/")
    expect(page.locator("#metric-table")).to_be_visible()
    _figures_drawn(page)
    assert page.locator(".eval-figure").count() == len(first.summary["metrics"]) + 2
    cc = first.summary["model"]["cc"]["mean"]
    expect(page.locator("#metric-table tr[data-row='model']")).to_contain_text(f"{cc:.3f}")
    page.screenshot(path=str(shots / "evaluation.png"), full_page=True)
    name, body = _download(page, "#csv-metrics", tmp_path)
    assert name == f"evaluation-{first.pk}-metrics.csv" and body.startswith(b"row,label,metric")
    name, body = _download(page, "#figure-cc + .figure-tools button[data-format='png']", tmp_path)
    assert name == f"evaluation-{first.pk}-cc.png" and body.startswith(b"\x89PNG\r\n\x1a\n")
    name, body = _download(page, "#figure-roc + .figure-tools button[data-format='svg']", tmp_path)
    assert name.endswith(".svg") and b"<svg" in body[:400]
    name, body = _download(page, "#link-images-csv", tmp_path)
    assert name.endswith(".csv") and body.startswith(b"key,label,pred,correct")

    # The readers: a table and a bar chart that follows the chosen metric.
    page.goto(f"{live_server.url}/evaluations/{first.pk}/readers/")
    _figures_drawn(page)
    page.locator("#readers-metric").select_option("nss")
    expect(page.locator("#figure-readers .gtitle")).to_contain_text("NSS")
    page.screenshot(path=str(shots / "readers.png"), full_page=True)

    # The regions: none yet (the page says how to add them), then a whole-image box and a
    # left half on two images: a table with the model's share 1.000 and a grouped bar chart.
    page.goto(f"{live_server.url}/evaluations/{first.pk}/regions/")
    expect(page.locator("#regions-none")).to_contain_text("/api/v1/image-regions/import/")
    images = [r.item.image for r in EvaluationImage.objects.filter(evaluation=first)
              .select_related("item__image").order_by("key")[:2]]  # fmt: skip
    text = "image,name,x1,y1,x2,y2\n" + "".join(
        f"{i.key},whole,0,0,{i.width},{i.height}\n{i.key},left,0,0,{i.width / 2},{i.height}\n"
        for i in images
    )
    imaging.regions_import(lab=lab, actor=user, fmt="boxes", text=text)
    page.goto(f"{live_server.url}/evaluations/{first.pk}/")
    page.locator("#link-regions").click()
    expect(page).to_have_url(f"{live_server.url}/evaluations/{first.pk}/regions/")
    _figures_drawn(page)
    expect(
        page.locator("#regions-table tr[data-region='boxes:whole'] .share-model")
    ).to_contain_text("1.000")
    expect(page.locator("#region-images-table tbody tr")).to_have_count(4)
    expect(page.locator("#figure-regions .legendtext")).to_contain_text(
        ["Model", "Readers (pooled)", "R1", "R2", "Area (chance)"]
    )
    page.screenshot(path=str(shots / "regions.png"), full_page=True)
    name, body = _download(page, "#figure-regions + .figure-tools button[data-format='svg']",
                           tmp_path)  # fmt: skip
    assert name == f"evaluation-{first.pk}-regions.svg" and b"<svg" in body[:400]
    name, body = _download(page, "#figure-regions + .figure-tools button[data-format='png']",
                           tmp_path)  # fmt: skip
    assert body.startswith(b"\x89PNG")
    name, body = _download(page, "#csv-regions", tmp_path)
    assert name == f"evaluation-{first.pk}-regions.csv" and body.startswith(b"source,name,")
    name, body = _download(page, "#csv-region-images", tmp_path)
    assert name.endswith(".csv") and body.startswith(b"key,image,source,name")

    # The gallery: worst CC first, then best first from the sort control.
    rows = list(EvaluationImage.objects.filter(evaluation=first))
    page.set_viewport_size({"width": 1280, "height": 2600})  # every lazy panel in view
    page.goto(f"{live_server.url}/evaluations/{first.pk}/gallery/")
    assert _keys(page) == [r.key for r in sorted(rows, key=lambda r: (r.cc, r.key))]
    page.wait_for_function(
        "() => [...document.querySelectorAll('.panels img')]"
        ".every((img) => img.complete && img.naturalWidth === 256)"
    )
    page.screenshot(path=str(shots / "gallery.png"), full_page=True)
    page.get_by_label("Sort by").select_option("-cc")
    expect(page).to_have_url(f"{live_server.url}/evaluations/{first.pk}/gallery/?ordering=-cc"
                             "&label=&correct=")  # fmt: skip
    assert _keys(page) == [r.key for r in sorted(rows, key=lambda r: (-r.cc, r.key))]
    page.set_viewport_size({"width": 1280, "height": 900})

    # A comparison started from the list's check boxes.
    page.goto(f"{live_server.url}/evaluations/")
    expect(page.locator("#evaluations .evaluation-row")).to_have_count(2)
    page.locator(f"#compare-{first.pk}").check()
    page.locator(f"#compare-{second.pk}").check()
    page.locator("#compare-selected").click()
    expect(page.locator("#compare-summary")).to_be_visible()
    # The list is newest first: the topmost ticked (the second) is the reference.
    expect(page.locator(f"#compare-tests-{first.pk} tbody tr")).to_have_count(
        len(first.summary["metrics"])
    )
    _figures_drawn(page)
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    name, body = _download(page, "#csv-compare", tmp_path)
    assert name == "comparison.csv" and body.startswith(b"a,b,metric,n,mean_a")
    name, body = _download(page, "#figure-effects + .figure-tools button[data-format='png']",
                           tmp_path)  # fmt: skip
    assert body.startswith(b"\x89PNG")

    assert console == [] and failed == [], (console, failed)
    print(f"Screenshots: {shots}")
