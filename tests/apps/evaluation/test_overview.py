"""The home page's lab overview: counts, recent jobs, and the production model's headline
metrics beside the centre bias and the inter-observer ceiling, in a fixed number of queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.evaluation.overview import headline, lab_overview
from apps.training import services as training
from tests.apps.evaluation.objects import evaluated

pytestmark = pytest.mark.django_db


def _home(client) -> str:
    answer = client.get("/")
    assert answer.status_code == 200
    return answer.content.decode()


def test_without_a_production_model_the_overview_says_what_to_do(personas, client):
    client.force_login(personas.viewer_a)
    page = _home(client)
    assert 'id="lab-overview"' in page and 'data-count="images">0<' in page
    assert "No model version has the alias" in page
    assert "No training job yet" in page


def test_the_production_model_stands_between_centre_bias_and_ceiling(snapshot, personas, client):
    evaluation = evaluated(snapshot, personas.researcher_a)
    training.alias_set(version=evaluation.version, name="production", actor=personas.admin_a)
    client.force_login(personas.viewer_a)
    page = _home(client)
    summary = evaluation.summary
    cc = summary["model"]["cc"]["mean"]
    row = re.search(r'<tr data-metric="cc">(.*?)</tr>', page, re.S).group(1)
    assert f"{cc:.3f}" in row
    assert f"{summary['ceiling']['cc']['mean']:.3f}" in row
    assert f"{summary['centre_bias']['cc']['mean']:.3f}" in row
    assert 'id="headline-data"' in page and "vendor/plotly.min.js" in page
    assert f'data-count="images">{personas.lab_a.images.count()}<' in page
    assert evaluation.version.job.name in page  # among the recent jobs

    h = headline(evaluation)
    cc_row = next(r for r in h["rows"] if r["metric"] == "cc")
    centre, ceiling = summary["centre_bias"]["cc"]["mean"], summary["ceiling"]["cc"]["mean"]
    if ceiling > centre:
        assert cc_row["between"] == pytest.approx((cc - centre) / (ceiling - centre))
    else:  # two readers on a tiny lab may agree less than the centre bias predicts them
        assert cc_row["between"] is None and cc_row["place"].startswith("no gap")
    assert f'<td class="model-place">{cc_row["place"]}</td>' in row


def test_the_overview_takes_the_same_queries_for_a_bigger_lab(snapshot, personas):
    evaluated(snapshot, personas.researcher_a)
    with CaptureQueriesContext(connection) as small:
        lab_overview(lab=personas.lab_a)
    evaluation = evaluated(snapshot, personas.researcher_a, seed=4)
    training.alias_set(version=evaluation.version, name="production", actor=personas.admin_a)
    with CaptureQueriesContext(connection) as big:
        overview = lab_overview(lab=personas.lab_a)
    assert overview["production_evaluation"]["evaluation"] == evaluation
    assert len(big) <= len(small) + 1  # the production model's evaluation


def test_a_new_lab_is_told_its_next_step_and_what_needs_attention(personas, client):
    from apps.gaze.models import Recording
    from tests.apps.datasets.objects import add_image
    from tests.apps.gaze.objects import gaze_recording

    client.force_login(personas.viewer_a)
    page = _home(client)
    assert 'id="next-step"' in page and "Upload chest X-rays" in page
    add_image(personas.lab_a, personas.researcher_a, "one", "CHF")
    add_image(personas.lab_a, personas.researcher_a, "two", "", seed=5)
    page = _home(client)
    assert "as <a" in page and "readers" in page  # the next step: a reader
    assert "2 images</a> with no reading yet" in page
    assert "1 image</a> without a label" in page
    assert "CHF: <strong>1</strong>" in page and "(no label): <strong>1</strong>" in page
    recording = gaze_recording(personas.lab_a)
    Recording.objects.filter(pk=recording.pk).update(status="failed", unmatched_stimuli=["x.png"])
    page = _home(client)
    assert "1 recording failed" in page and "stimuli that match no image" in page
    assert 'id="readings-by-grade"' in page


NO_GAP = "no gap: the readers agree no better than the centre bias"


@pytest.mark.parametrize(
    "metric, model, centre, ceiling, between, text",
    [("cc", 0.72, 0.67, 0.77, 0.5, "50%"),
     ("cc", 0.10, 0.67, 0.77, -5.7, "below the centre bias"),
     ("nss", 2.0, 1.4, 1.8, 1.5, "above the ceiling"),
     ("kl", 0.5, 0.6, 0.4, 0.5, "50%"),  # lower is better
     ("kl", 1.5, 0.57, 1.08, None, NO_GAP),
     ("sim", 0.30, 0.60, 0.57, None, NO_GAP),
     ("sim", 0.63, 0.6531, 0.6533, None, NO_GAP),
     ("cc", 0.5, None, 0.7, None, "–")],
)  # fmt: skip
def test_the_model_is_placed_only_where_the_readers_beat_the_centre_bias(
    metric, model, centre, ceiling, between, text
):
    from apps.evaluation.overview import place

    got, said = place(metric, model, centre, ceiling)
    assert said == text
    assert got == (None if between is None else pytest.approx(between, abs=0.01))
