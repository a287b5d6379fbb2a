"""On the synthetic demo lab (make_demo_lab: phantoms read by simulated radiologists whose gaze
goes to the anatomy, the findings and each image's conspicuous spots), the radiologists agree
with each other better than the centre bias (the training split's mean gaze map) predicts them:
the inter-observer ceiling is above the centre-bias baseline on CC, NSS and the three AUCs, so a
model's place between them means something.

KL and SIM are left out: they reward smooth maps (Bylinskii et al., "What do different
evaluation metrics tell us about saliency models?", 2018), and one reader's map of some 40
fixations is sparse next to a mean over the training split, so there the centre bias is as good
as a colleague or better, on real readers as on these."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.datasets import services as datasets
from tests.apps.evaluation.objects import evaluated

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_ceiling_is_above_the_centre_bias_on_the_demo_lab(personas):
    call_command(
        "make_demo_lab", "--images", "30", "--readers", "3", "--size", "small", "--lab", "lab-a",
        "--user", "researcher_a", stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    snap = datasets.snapshot_create(lab=personas.lab_a, actor=personas.researcher_a,
                                    name="demo", enqueue=False, resolution=[128, 112])  # fmt: skip
    snap = datasets.snapshot_build(snapshot_id=snap.pk)
    assert snap.status == "ready", snap.error
    evaluation = evaluated(snap, personas.researcher_a)
    summary = evaluation.summary
    assert summary["n_multi_reader"] == summary["n_images"] >= 6
    assert set(summary["readers"]) == {"R1", "R2", "R3"}
    ceiling, centre = summary["ceiling"], summary["centre_bias"]
    for metric in ("cc", "nss", "auc_judd", "auc_borji", "sauc"):
        assert ceiling[metric]["mean"] > centre[metric]["mean"], (metric, ceiling, centre)
    # The untrained model stands below both (the page shows where a trained one stands).
    assert summary["model"]["cc"]["mean"] < centre["cc"]["mean"]
