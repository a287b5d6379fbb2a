"""The regions page of an evaluation: the per-region means (a whole-image box holds all the
model's mass), the figure's data, the per-image rows a page at a time with their CSVs; the
explanation when no image has regions, the message while the evaluation has not succeeded;
constant queries whatever the number of images; tenancy."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.evaluation import services, views_regions
from apps.evaluation.models import Evaluation, EvaluationImage
from apps.imaging import services as imaging
from apps.imaging.models import Image
from tests.apps.evaluation.objects import evaluated, version_on

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def evaluation(snapshot, personas) -> Evaluation:
    return evaluated(snapshot, personas.researcher_a)


def _rows(evaluation: Evaluation) -> list[EvaluationImage]:
    return list(evaluation.images.select_related("item__image").order_by("key"))


def _boxes(personas, lines: list[str]) -> None:
    text = "image,name,x1,y1,x2,y2\n" + "".join(f"{line}\n" for line in lines)
    imaging.regions_import(lab=personas.lab_a, actor=personas.researcher_a, fmt="boxes",
                           text=text)  # fmt: skip


def _region_row(content: str, region: str) -> str:
    match = re.search(rf'<tr data-region="{re.escape(region)}">(.*?)</tr>', content, re.S)
    assert match, region
    return match.group(1)


def test_the_page_shows_the_shares_to_a_viewer(evaluation, personas):
    first, second = _rows(evaluation)[:2]
    key1, key2 = first.item.image.key, second.item.image.key
    _boxes(personas, [f"{key1},whole,0,0,50,60", f"{key1},left,0,0,25,60",
                      f"{key2},left,0,0,25,60"])  # fmt: skip
    result = services.evaluation_regions(evaluation=evaluation)

    response = _client(personas.viewer_a).get(f"/evaluations/{evaluation.pk}/regions/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'aria-current="page">Regions</a>' in content
    whole = _region_row(content, "boxes:whole")
    # Model, pooled readers, R1, R2 and the area: a box over the whole image holds everything.
    assert re.findall(r"\d\.\d{3}", whole) == ["1.000"] * 5
    means = {r["name"]: r for r in result["regions"]}
    left = _region_row(content, "boxes:left")
    assert means["left"]["n_images"] == 2
    for value in (
        means["left"]["model_share"],
        means["left"]["dwell_share"],
        means["left"]["area_share"],
        *means["left"]["reader_dwell_shares"].values(),
    ):
        assert f"{value:.3f}" in left
    # The figure's data (no inline script: json_script), its box, and the CSVs.
    assert 'id="figures-data"' in content and "<script>" not in content
    assert 'id="figure-regions"' in content and "evaluation/regions.js" in content
    figures = re.search(r'<script id="figures-data" type="application/json">(.*?)</script>',
                        content, re.S).group(1)  # fmt: skip
    assert '"model_share": 1.0' in figures and '"readers": ["R1", "R2"]' in figures
    assert f"/evaluations/{evaluation.pk}/table.csv?table=regions" in content
    assert f"/api/v1/evaluations/{evaluation.pk}/regions/?format=csv" in content
    # The per-image rows: 3 image x region rows, each key linked to its image's page.
    assert content.count(f'<tr data-key="{first.key}">') == 2
    assert content.count(f'<tr data-key="{second.key}">') == 1
    assert f'href="/images/{first.item.image.pk}/"' in content


def test_the_means_csv(evaluation, personas):
    first = _rows(evaluation)[0]
    _boxes(personas, [f"{first.item.image.key},whole,0,0,50,60"])
    response = _client(personas.viewer_a).get(
        f"/evaluations/{evaluation.pk}/table.csv?table=regions"
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'evaluation-{evaluation.pk}-regions.csv"')
    [header, row] = list(csv.reader(io.StringIO(response.content.decode())))
    assert header == ["source", "name", "n_images", "model_share", "n_model", "dwell_share",
                      "n_dwell", "dwell_R1", "dwell_R2", "area_share"]  # fmt: skip
    values = dict(zip(header, row, strict=True))
    assert (values["source"], values["name"], values["n_images"]) == ("boxes", "whole", "1")
    assert float(values["model_share"]) == pytest.approx(1.0)
    assert float(values["area_share"]) == pytest.approx(1.0)


def test_rows_come_a_page_at_a_time(evaluation, personas, monkeypatch):
    monkeypatch.setattr(views_regions, "ROWS_PER_PAGE", 2)
    rows = _rows(evaluation)
    assert len(rows) >= 3
    _boxes(personas, [f"{r.item.image.key},whole,0,0,50,60" for r in rows])
    client = _client(personas.viewer_a)
    url = f"/evaluations/{evaluation.pk}/regions/"
    first = client.get(url).content.decode()
    assert first.count("<tr data-key=") == 2 and 'rel="next"' in first
    assert f'<tr data-key="{rows[0].key}">' in first
    last = client.get(f"{url}?page=99").content.decode()  # past the end: the last page
    assert f'<tr data-key="{rows[-1].key}">' in last and 'rel="prev"' in last


def test_no_regions_says_how_to_add_them(evaluation, personas):
    response = _client(personas.viewer_a).get(f"/evaluations/{evaluation.pk}/regions/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="regions-none"' in content and "/api/v1/image-regions/import/" in content
    for fmt in ("egd", "reflacx", "boxes"):
        assert f"<code>{fmt}</code>" in content
    assert 'id="figure-regions"' not in content and "plotly" not in content


def test_regions_elsewhere_in_the_lab_are_no_rows_here(evaluation, personas):
    keys = {r.item.image.key for r in _rows(evaluation)}
    other = Image.objects.filter(lab=personas.lab_a).exclude(key__in=keys).first()
    _boxes(personas, [f"{other.key},whole,0,0,{other.width},{other.height}"])
    content = _client(personas.viewer_a).get(f"/evaluations/{evaluation.pk}/regions/").content
    assert b'id="regions-none"' in content


def test_an_evaluation_not_succeeded_shows_a_message(snapshot, personas):
    version = version_on(snapshot, personas.researcher_a)
    queued = services.evaluation_create(version=version, snapshot=snapshot, split="test",
                                        actor=personas.researcher_a, enqueue=False)  # fmt: skip
    client = _client(personas.viewer_a)
    response = client.get(f"/evaluations/{queued.pk}/regions/")
    assert response.status_code == 200
    assert b'id="regions-not-ready"' in response.content and b"queued" in response.content
    Evaluation.objects.filter(pk=queued.pk).update(status=Evaluation.Status.FAILED, error="boom")
    response = client.get(f"/evaluations/{queued.pk}/regions/")
    assert response.status_code == 200 and b"failed" in response.content
    assert client.get(f"/evaluations/{queued.pk}/table.csv?table=regions").status_code == 409


def test_queries_do_not_grow_with_the_images(evaluation, personas):
    rows = _rows(evaluation)
    _boxes(personas, [f"{r.item.image.key},whole,0,0,50,60" for r in rows]
           + [f"{r.item.image.key},left,0,0,25,60" for r in rows])  # fmt: skip
    client = _client(personas.viewer_a)
    counts = {}
    for n in (2, 10):
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
        client.get(f"/evaluations/{copy.pk}/regions/")  # the session's first queries
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/evaluations/{copy.pk}/regions/")
        assert response.status_code == 200
        assert response.content.decode().count("<tr data-key=") == 2 * n
        counts[n] = len(queries)
    assert counts[2] == counts[10], counts


def test_the_evaluation_page_links_here_and_another_lab_gets_404(evaluation, personas):
    page = _client(personas.viewer_a).get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert f'href="/evaluations/{evaluation.pk}/regions/" id="link-regions"' in page
    other = _client(personas.admin_b)
    assert other.get(f"/evaluations/{evaluation.pk}/regions/").status_code == 404
    assert other.get(f"/evaluations/{evaluation.pk}/table.csv?table=regions").status_code == 404
    assert Client().get(f"/evaluations/{evaluation.pk}/regions/").status_code == 302
