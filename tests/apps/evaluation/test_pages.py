"""The evaluation pages: the list with its start form, an evaluation's dashboard, the gallery
(ordering, filters, constant queries per page) and its PNG panels, the readers' agreement, and
the comparison (paired tests, refusals as 400 pages); tenancy and roles."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from apps.evaluation import services
from apps.evaluation.models import Evaluation, EvaluationImage
from apps.evaluation.services import render
from tests.apps.evaluation.objects import evaluated, version_on

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def evaluation(snapshot, personas) -> Evaluation:
    return evaluated(snapshot, personas.researcher_a)


def _keys(content: bytes) -> list[str]:
    text = content.decode()
    return [part.split('"', 1)[0] for part in text.split('data-key="')[1:]]


def _copy(evaluation: Evaluation, n: int) -> Evaluation:
    """An evaluation with ``n`` rows, made of ``evaluation``'s (same maps and items)."""
    rows = list(evaluation.images.all())
    copy = Evaluation.objects.get(pk=evaluation.pk)
    copy.pk = None
    copy.save()
    EvaluationImage.objects.bulk_create([
        EvaluationImage(**{
            **{f.attname: getattr(rows[i % len(rows)], f.attname)
               for f in EvaluationImage._meta.concrete_fields
               if f.name not in ("id", "evaluation")},
            "evaluation": copy, "key": f"img-{i:03d}",
        })
        for i in range(n)
    ])  # fmt: skip
    return copy


def test_pages_render_with_the_numbers_for_a_viewer(evaluation, personas):
    client = _client(personas.viewer_a)
    listed = client.get("/evaluations/").content.decode()
    assert evaluation.name in listed and f'value="{evaluation.pk}"' in listed  # compare box
    assert 'id="evaluation-form"' not in listed  # a viewer starts nothing

    page = client.get(f"/evaluations/{evaluation.pk}/")
    assert page.status_code == 200
    content = page.content.decode()
    cc = evaluation.summary["model"]["cc"]
    assert f"{cc['mean']:.3f}" in content and f"{cc['ci95_low']:.3f}" in content
    for row in ("model", "centre_bias", "ceiling", "reader:R1", "reader:R2", "model:R1"):
        assert f'data-row="{row}"' in content, row
    assert 'id="figures-data"' in content and "<script>" not in content  # CSP: no inline script
    assert content.count('class="eval-figure"') == len(evaluation.summary["metrics"]) + 2
    assert f"{evaluation.classification['accuracy']:.3f}" in content
    assert f"/evaluations/{evaluation.pk}/gallery/" in content
    assert f"/api/v1/evaluations/{evaluation.pk}/images/?format=csv" in content

    readers = client.get(f"/evaluations/{evaluation.pk}/readers/").content.decode()
    r1 = evaluation.summary["model_readers"]["R1"]["cc"]["mean"]
    others = evaluation.summary["readers"]["R2"]["cc"]["mean"]
    assert f"{r1:.3f}" in readers and f"{others:.3f}" in readers
    assert 'id="figure-readers"' in readers

    gallery = client.get(f"/evaluations/{evaluation.pk}/gallery/").content.decode()
    row = evaluation.images.first()
    assert f"/evaluations/images/{row.pk}/panel.png?kind=difference" in gallery

    table = client.get(f"/evaluations/{evaluation.pk}/table.csv?table=metrics")
    lines = list(csv.DictReader(io.StringIO(table.content.decode())))
    model_cc = next(r for r in lines if r["row"] == "model" and r["metric"] == "cc")
    assert float(model_cc["mean"]) == pytest.approx(cc["mean"])
    for name in ("readers", "classification", "confusion", "roc"):
        response = client.get(f"/evaluations/{evaluation.pk}/table.csv?table={name}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert client.get(f"/evaluations/{evaluation.pk}/table.csv?table=nope").status_code == 400
    version_page = client.get(f"/models/{evaluation.version_id}/").content.decode()
    assert f"/evaluations/?version={evaluation.version_id}" in version_page

    # Without images read by two readers, the ceiling's row says why it is missing.
    note = "every image here was read by one (R1), so it cannot be computed."
    Evaluation.objects.filter(pk=evaluation.pk).update(summary={
        **evaluation.summary, "ceiling": None, "readers": {}, "notes": {"ceiling": note},
    })  # fmt: skip
    content = client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert 'data-row="ceiling"' in content and note in content


def test_another_lab_gets_404(evaluation, personas):
    other = _client(personas.admin_b)
    row = evaluation.images.first()
    for url in (f"/evaluations/{evaluation.pk}/", f"/evaluations/{evaluation.pk}/gallery/",
                f"/evaluations/{evaluation.pk}/readers/", f"/evaluations/{evaluation.pk}/table.csv",
                f"/evaluations/images/{row.pk}/panel.png",
                f"/evaluations/compare/?ids={evaluation.pk}&ids={evaluation.pk}"):  # fmt: skip
        assert other.get(url).status_code == 404, url
    assert evaluation.name.encode() not in other.get("/evaluations/").content


def test_start_form_creates_for_a_researcher_and_refuses_a_viewer(snapshot, personas, monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda pk: None)
    version = version_on(snapshot, personas.researcher_a)
    viewer = _client(personas.viewer_a)
    assert viewer.post("/evaluations/", {"version": version.pk, "split": "test"}).status_code == 403
    assert not Evaluation.objects.exists()

    client = _client(personas.researcher_a)
    page = client.get(f"/evaluations/?version={version.pk}").content.decode()
    assert 'id="evaluation-form"' in page and f'<option value="{version.pk}" selected>' in page
    response = client.post("/evaluations/", {"version": version.pk, "split": "test"})
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evaluations/{evaluation.pk}/"
    assert evaluation.status == "queued" and evaluation.created_by == personas.researcher_a
    queued = client.get(response["Location"]).content.decode()
    assert 'data-status-url="/api/v1/evaluations/' in queued and "Queued" in queued

    bad = client.post("/evaluations/", {"version": "999999", "split": "nope"})
    assert bad.status_code == 400 and b"Select a valid choice" in bad.content

    def refuse(**kwargs):
        raise ValidationError({"split": ["Snapshot 'eval-me' has no val image."]})

    monkeypatch.setattr(services, "evaluation_create", refuse)
    refused = client.post("/evaluations/", {"version": version.pk, "split": "val"})
    assert refused.status_code == 400 and b"has no val image" in refused.content
    assert Evaluation.objects.count() == 1


def test_gallery_sorts_and_filters(evaluation, personas):
    client = _client(personas.viewer_a)
    rows = list(evaluation.images.all())
    by_cc = [r.key for r in sorted(rows, key=lambda r: (r.cc, r.key))]
    assert _keys(client.get(f"/evaluations/{evaluation.pk}/gallery/").content) == by_cc  # default
    page = client.get(f"/evaluations/{evaluation.pk}/gallery/?ordering=cc")
    assert _keys(page.content) == by_cc
    descending = client.get(f"/evaluations/{evaluation.pk}/gallery/?ordering=-cc").content
    assert _keys(descending) == [r.key for r in sorted(rows, key=lambda r: (-r.cc, r.key))]
    by_kl = client.get(f"/evaluations/{evaluation.pk}/gallery/?ordering=-kl").content
    assert _keys(by_kl) == [r.key for r in sorted(rows, key=lambda r: (-r.kl, r.key))]

    wrong = _keys(client.get(f"/evaluations/{evaluation.pk}/gallery/?correct=false").content)
    assert sorted(wrong) == sorted(r.key for r in rows if r.correct is False)
    label = rows[0].label
    of_class = _keys(client.get(f"/evaluations/{evaluation.pk}/gallery/?label={label}").content)
    assert sorted(of_class) == sorted(r.key for r in rows if r.label == label)

    for query in ("ordering=bogus", "label=99", "label=x", "correct=maybe"):
        response = client.get(f"/evaluations/{evaluation.pk}/gallery/?{query}")
        assert response.status_code == 400 and b'class="error"' in response.content, query
    assert client.get(f"/evaluations/{evaluation.pk}/gallery/?page=999").status_code == 200
    # A query without a sort (a page link) sorts by the default and its select says so.
    paged = client.get(f"/evaluations/{evaluation.pk}/gallery/?page=1").content.decode()
    assert _keys(paged.encode()) == by_cc
    assert re.search(r'<option value="cc"[^>]*selected', paged), "the select shows another sort"


def test_gallery_queries_do_not_grow_with_the_images(evaluation, personas):
    client = _client(personas.viewer_a)
    counts = {}
    for n in (4, 12):
        copy = _copy(evaluation, n)
        client.get(f"/evaluations/{copy.pk}/gallery/")  # the session's first queries
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/evaluations/{copy.pk}/gallery/")
        assert response.status_code == 200 and len(_keys(response.content)) == n
        counts[n] = len(queries)
    assert counts[4] == counts[12], counts


def test_panel_is_a_cached_png_of_the_frame(evaluation, personas):
    client = _client(personas.viewer_a)
    row = evaluation.images.first()
    url = f"/evaluations/images/{row.pk}/panel.png"
    etags = set()
    for kind in render.KINDS:
        response = client.get(f"{url}?kind={kind}")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "PNG" and image.size == (256, 256) and image.mode == "RGB"
        assert "private" in response["Cache-Control"] and "max-age" in response["Cache-Control"]
        etags.add(response["ETag"])
        again = client.get(f"{url}?kind={kind}", HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 304 and again["ETag"] == response["ETag"]
    assert len(etags) == 3
    assert client.get(f"{url}?kind=nope").status_code == 400
    assert client.post(url).status_code == 405


def test_panel_drawing_without_django():
    """The drawing itself: arrays in, a PNG of the frame times the scale out, fixations on top."""
    xray = (np.linspace(0, 65535, 32 * 48).reshape(32, 48)).astype(np.uint16)
    model = np.zeros((32, 48))
    model[10:20, 10:20] = 1.0
    pooled = np.zeros((32, 48))
    pooled[5:9, 30:40] = 1.0
    fixations = np.array([[35, 7], [12, 12]])
    sizes = {}
    for kind in render.KINDS:
        png = render.panel_png(kind=kind, xray=xray, model=model, pooled=pooled,
                               fixations=fixations)  # fmt: skip
        sizes[kind] = Image.open(io.BytesIO(png)).size
    assert set(sizes.values()) == {(48 * 6, 32 * 6)}  # scaled to reach 256 on the long side
    plain = render.panel_png(kind="model", xray=xray, model=model, pooled=None, fixations=None)
    marked = render.panel_png(kind="model", xray=xray, model=model, pooled=None,
                              fixations=fixations)  # fmt: skip
    a = np.asarray(Image.open(io.BytesIO(plain)))
    b = np.asarray(Image.open(io.BytesIO(marked)))
    changed = np.argwhere((a != b).any(axis=2))
    assert len(changed) and abs(changed[:, 1].mean() / 6 - 23.5) < 13  # around the fixations
    diff = render.difference(model, pooled)
    assert np.abs(diff).max() == pytest.approx(1.0) and diff.min() < 0 < diff.max()
    with pytest.raises(ValueError):
        render.panel_png(kind="difference", xray=None, model=model, pooled=None, fixations=None)
    assert render.xray_unit(np.array([[0.0, 300.0]])).tolist() == [[0.0, 1.0]]


def test_comparison_and_its_refusals(evaluation, snapshot, personas):
    version = version_on(snapshot, personas.researcher_a, seed=1)
    second = services.evaluation_create(version=version, snapshot=snapshot, split="test",
                                        actor=personas.researcher_a, enqueue=False)  # fmt: skip
    assert services.evaluation_run(evaluation_id=second.pk).status == "succeeded"
    client = _client(personas.viewer_a)
    url = f"/evaluations/compare/?ids={evaluation.pk}&ids={second.pk}"
    page = client.get(url)
    assert page.status_code == 200
    content = page.content.decode()
    assert "Holm p" in content and "Rank-biserial" in content and 'id="figure-effects"' in content
    assert f'id="compare-tests-{second.pk}"' in content
    cc = evaluation.summary["model"]["cc"]["mean"]
    assert f"{cc:.3f}" in content
    tests = list(csv.DictReader(io.StringIO(client.get(url + "&format=csv").content.decode())))
    assert {r["metric"] for r in tests} >= {"cc", "kl", "nss"}
    summary = client.get(url + "&format=csv&table=summary").content.decode()
    assert summary.startswith("evaluation,name,metric,n,mean")

    chooser = client.get(f"/evaluations/compare/?ids={evaluation.pk}")
    assert chooser.status_code == 200 and b'id="compare-form"' in chooser.content

    other_split = Evaluation.objects.get(pk=second.pk)
    other_split.pk, other_split.split = None, "val"
    other_split.save()
    refused = client.get(f"/evaluations/compare/?ids={evaluation.pk}&ids={other_split.pk}")
    assert refused.status_code == 400
    assert b"only evaluations on the same snapshot split compare" in refused.content
    assert client.get("/evaluations/compare/?ids=x&ids=2").status_code == 400
    assert client.get(f"/evaluations/compare/?ids={evaluation.pk}&ids=99999").status_code == 404
    assert client.get("/evaluations/compare/").status_code == 200
