"""The evaluations API: create (202) and its refusals, the per-image rows sorted, filtered and
as CSV, each stored map, and comparisons whose paired tests equal scipy's on the same pairs."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from scipy import stats

from apps.evaluation import services
from apps.evaluation.models import Evaluation, EvaluationImage
from tests.apps.evaluation.objects import evaluated, two_reader_snapshot, version_on
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_create_answers_202_with_a_status_url_and_queues_nothing_twice(snapshot, personas,
                                                                       monkeypatch):  # fmt: skip
    version = version_on(snapshot, personas.researcher_a)
    sent = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    client = client_for(personas.researcher_a)
    answer = client.post("/api/v1/evaluations/", {"version": version.pk}, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert answer["Location"] == body["status_url"] == f"/api/v1/evaluations/{body['id']}/status/"
    assert (
        body["split"] == "test" and body["snapshot"] == snapshot.pk and body["status"] == "queued"
    )
    assert sent == [body["id"]]
    status = client.get(body["status_url"]).json()
    assert status["status"] == "queued" and status["total"] > 0 and status["progress"] == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"split": "holdout"}, "split", "is not a valid choice"),
        ({"snapshot": 2**40}, "snapshot", "does not exist"),
        ({"surprise": 1}, "surprise", ""),
    ],
)
def test_create_refuses_bad_bodies_naming_the_field(snapshot, personas, body, field, words):
    version = version_on(snapshot, personas.researcher_a)
    answer = client_for(personas.researcher_a).post(
        "/api/v1/evaluations/", {"version": version.pk, **body}, format="json"
    )
    assert answer.status_code == 400
    assert words in str(answer.json()["error"]["fields"][field])
    assert not Evaluation.objects.exists()


def test_another_labs_version_reads_as_missing(snapshot, personas):
    version = version_on(snapshot, personas.researcher_a)
    answer = client_for(personas.admin_b).post(
        "/api/v1/evaluations/", {"version": version.pk}, format="json"
    )
    assert answer.status_code == 400 and "does not exist" in str(answer.json())


def test_images_sort_by_any_metric_filter_and_export_csv(snapshot, personas):
    evaluation = evaluated(snapshot, personas.researcher_a)
    client = client_for(personas.viewer_a)
    url = f"/api/v1/evaluations/{evaluation.pk}/images/"
    worst_first = client.get(url, {"ordering": "cc"}).json()
    ccs = [r["metrics"]["cc"] for r in worst_first["results"]]
    assert ccs == sorted(ccs) and worst_first["count"] == evaluation.total
    best_first = client.get(url, {"ordering": "-cc"}).json()
    assert [r["metrics"]["cc"] for r in best_first["results"]] == sorted(ccs, reverse=True)
    kls = [r["metrics"]["kl"] for r in client.get(url, {"ordering": "-kl"}).json()["results"]]
    assert kls == sorted(kls, reverse=True)
    row = worst_first["results"][0]
    assert row["image"] and set(row["reader_metrics"]) == {"R1", "R2"} and row["map_url"]

    label = row["label"]
    only = client.get(url, {"label": label}).json()["results"]
    assert only and {r["label"] for r in only} == {label}
    wrong = client.get(url, {"correct": "false"}).json()["results"]
    assert all(r["pred"] != r["label"] for r in wrong)
    assert len(wrong) == EvaluationImage.objects.filter(evaluation=evaluation,
                                                        correct=False).count()  # fmt: skip
    for bad in ({"ordering": "drop table"}, {"label": "9"}, {"correct": "maybe"}):
        answer = client.get(url, bad)
        assert answer.status_code == 400 and list(bad)[0] in answer.json()["error"]["fields"]

    exported = client.get(url, {"format": "csv", "ordering": "-cc"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(lines) == evaluation.total
    assert [float(x["cc"]) for x in lines] == pytest.approx(sorted(ccs, reverse=True))


def test_each_map_downloads_as_stored(snapshot, personas):
    evaluation = evaluated(snapshot, personas.researcher_a)
    row = EvaluationImage.objects.filter(evaluation=evaluation).first()
    answer = client_for(personas.viewer_a).get(f"/api/v1/evaluation-images/{row.pk}/map/")
    assert answer.status_code == 200
    with np.load(io.BytesIO(answer.content)) as data:
        assert data["map"].dtype == np.float16 and data["map"].shape == (64, 64)
        assert np.array_equal(data["map"], services.load_map(row.map_name))
        assert data["map"].max() == 1.0


def test_detail_has_the_summary_and_classification(snapshot, personas):
    evaluation = evaluated(snapshot, personas.researcher_a)
    body = client_for(personas.viewer_a).get(f"/api/v1/evaluations/{evaluation.pk}/").json()
    assert body["summary"]["model"]["cc"]["n"] == evaluation.total
    assert body["summary"]["ceiling"]["cc"]["mean"] is not None
    assert len(body["classification"]["confusion_matrix"]) == 3


def test_a_comparison_equals_scipys_wilcoxon_on_the_same_pairs(snapshot, personas):
    a = evaluated(snapshot, personas.researcher_a, seed=1)
    b = evaluated(snapshot, personas.researcher_a, seed=2)
    answer = client_for(personas.viewer_a).get("/api/v1/evaluations/compare/",
                                               {"ids": [a.pk, b.pk]})  # fmt: skip
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    pair = body["pairs"][0]
    assert (pair["a"], pair["b"], pair["n_pairs"]) == (a.pk, b.pk, a.total)
    rows_a = dict(EvaluationImage.objects.filter(evaluation=a).values_list("key", "cc"))
    rows_b = dict(EvaluationImage.objects.filter(evaluation=b).values_list("key", "cc"))
    keys = sorted(rows_a)
    expected = stats.wilcoxon([rows_a[k] for k in keys], [rows_b[k] for k in keys])
    cc = pair["metrics"]["cc"]
    assert cc["statistic"] == pytest.approx(expected.statistic)
    assert cc["p_value"] == pytest.approx(expected.pvalue)
    assert cc["mean_diff"] == pytest.approx(np.mean([rows_a[k] - rows_b[k] for k in keys]))
    assert cc["p_holm"] >= cc["p_value"]
    assert -1 <= cc["rank_biserial"] <= 1
    assert set(body["metrics"]) <= set(pair["metrics"])


def test_evaluations_on_different_splits_are_refused_with_the_reason(snapshot, personas):
    a = evaluated(snapshot, personas.researcher_a, seed=1)
    b = evaluated(snapshot, personas.researcher_a, seed=2, split="val")
    answer = client_for(personas.viewer_a).get("/api/v1/evaluations/compare/",
                                               {"ids": [a.pk, b.pk]})  # fmt: skip
    assert answer.status_code == 400
    assert "same snapshot split" in answer.json()["error"]["fields"]["evaluations"][0]
    other = two_reader_snapshot(personas.lab_a, personas.researcher_a, name="other",
                                sigma_deg=2.0)  # fmt: skip
    c = evaluated(other, personas.researcher_a, seed=3)
    answer = client_for(personas.viewer_a).get("/api/v1/evaluations/compare/",
                                               {"ids": [a.pk, c.pk]})  # fmt: skip
    assert answer.status_code == 400 and "snapshot" in str(answer.json())
    single = client_for(personas.viewer_a).get("/api/v1/evaluations/compare/", {"ids": [a.pk]})
    assert single.status_code == 400


def test_delete_removes_the_rows_and_their_maps(
    snapshot, personas, django_capture_on_commit_callbacks
):
    from apps.core import storage

    evaluation = evaluated(snapshot, personas.researcher_a)
    rows = EvaluationImage.objects.filter(evaluation=evaluation)
    names = list(rows.values_list("map_name", flat=True))
    assert (
        client_for(personas.viewer_a).delete(f"/api/v1/evaluations/{evaluation.pk}/").status_code
        == 403
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for(personas.researcher_a).delete(f"/api/v1/evaluations/{evaluation.pk}/")
    assert answer.status_code == 204
    assert not EvaluationImage.objects.exists()
    assert not any(storage.local_path(n).exists() for n in names)
