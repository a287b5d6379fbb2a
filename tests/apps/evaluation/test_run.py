"""An evaluation run in this process: every image of the split scored and stored, its metrics
equal to pysaliency's (and scikit-learn's) recomputed from the stored maps, the references
(centre bias, inter-observer ceiling, each reader) beside the model, restarts and failures."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from apps.core import storage
from apps.datasets.models import SnapshotItem
from apps.evaluation import services
from apps.evaluation.models import METRICS, Evaluation, EvaluationImage
from ml.metrics import MIT_EPS
from ml.references import mean_map
from tests.apps.evaluation.objects import evaluated, two_reader_snapshot, version_on

if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid  # pysaliency 0.2.22 calls np.trapz (numpy 2.4 removed it)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pysaliency  # the oracle: test-only

pytestmark = pytest.mark.django_db


def _array(name: str) -> np.ndarray:
    return np.load(io.BytesIO(storage.read_bytes(name)))


class _MapsAreStimuli(pysaliency.SaliencyMapModel):
    def _saliency_map(self, stimulus):
        return np.asarray(stimulus, dtype=float)


class _LogDensity(pysaliency.Model):
    def __init__(self, fixed_map=None, eps=MIT_EPS):
        super().__init__(caching=False)
        self.fixed_map, self.eps = fixed_map, eps

    def _log_density(self, stimulus):
        source = self.fixed_map if self.fixed_map is not None else np.asarray(stimulus, float)
        return np.log(self.eps + source / source.sum())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_stored_metrics_equal_pysaliency_and_sklearn_from_the_stored_maps(snapshot, personas):
    evaluation = evaluated(snapshot, personas.researcher_a)
    rows = list(EvaluationImage.objects.filter(evaluation=evaluation).order_by("key"))
    items = {i.key: i for i in SnapshotItem.objects.filter(snapshot=snapshot, split="test")}
    assert evaluation.total == len(items) == len(rows) >= 3 and evaluation.done == len(rows)
    assert {r.key for r in rows} == set(items)

    maps = [services.as_density(services.load_map(r.map_name)) for r in rows]
    targets = [_array(items[r.key].target_name).astype(np.float64) for r in rows]
    fixations = [_array(items[r.key].fixations_name).reshape(-1, 2) for r in rows]
    train = SnapshotItem.objects.filter(snapshot=snapshot, split="train")
    baseline = mean_map(_array(i.target_name).astype(np.float64) for i in train)

    xs = np.concatenate([f[:, 0] for f in fixations]).astype(float)
    ys = np.concatenate([f[:, 1] for f in fixations]).astype(float)
    ns = np.concatenate([np.full(len(f), n) for n, f in enumerate(fixations)])
    stimuli = pysaliency.Stimuli(maps)
    fix = pysaliency.Fixations.create_without_history(x=xs, y=ys, n=ns)
    oracle = _MapsAreStimuli(caching=False)
    judd = oracle.AUC_per_image(stimuli, fix, nonfixations="unfixated", thresholds="fixations")
    borji = oracle.AUC_per_image(stimuli, fix, nonfixations="uniform")
    shuffled = oracle.AUC_per_image(stimuli, fix, nonfixations="shuffled")
    nss = oracle.NSSs(stimuli, fix)
    for n, (row, smap, target) in enumerate(zip(rows, maps, targets, strict=True)):
        mine = ns == n
        one = pysaliency.Fixations.create_without_history(
            x=xs[mine], y=ys[mine], n=np.zeros(mine.sum(), int)
        )
        gain = _LogDensity().information_gain(
            pysaliency.Stimuli([smap]), one, baseline_model=_LogDensity(baseline)
        )
        expected = {
            "cc": pysaliency.metrics.CC(smap, target),
            "sim": pysaliency.metrics.SIM(smap, target),
            "kl_mit": pysaliency.metrics.MIT_KLDiv(smap, target),
            "nss": nss[mine].mean(), "auc_judd": judd[n], "auc_borji": borji[n],
            "sauc": shuffled[n], "info_gain": gain,
        }  # fmt: skip
        for metric, value in expected.items():
            assert getattr(row, metric) == pytest.approx(value, abs=1e-6), (row.key, metric)
        assert row.kl is not None and row.kl >= 0

    # Classification: the stored probabilities' metrics equal scikit-learn's.
    labels = np.array([r.label for r in rows])
    probs = np.array([r.probs for r in rows])
    assert [r.pred for r in rows] == probs.argmax(1).tolist()
    c = evaluation.classification
    assert c["accuracy"] == pytest.approx(sk.accuracy_score(labels, probs.argmax(1)), abs=1e-6)
    assert (
        np.array(c["confusion_matrix"]).tolist()
        == sk.confusion_matrix(labels, probs.argmax(1), labels=[0, 1, 2]).tolist()
    )


def test_the_summary_sets_the_model_beside_the_centre_bias_the_ceiling_and_each_reader(
    snapshot, personas
):
    evaluation = evaluated(snapshot, personas.researcher_a)
    summary = evaluation.summary
    rows = EvaluationImage.objects.filter(evaluation=evaluation)
    cc = [r.cc for r in rows]
    assert summary["n_images"] == len(cc)
    assert summary["model"]["cc"]["mean"] == pytest.approx(np.mean(cc))
    assert summary["model"]["cc"]["ci95_low"] <= summary["model"]["cc"]["mean"]
    assert summary["model"]["cc"]["mean"] <= summary["model"]["cc"]["ci95_high"]
    assert set(summary["model_readers"]) == set(summary["readers"]) == {"R1", "R2"}
    assert summary["ceiling"] is not None and summary["n_multi_reader"] == len(cc)
    # With two readers, the ceiling per image is the mean of R1-vs-R2 and R2-vs-R1.
    row = rows.first()
    mean_cc = np.mean([row.loo_metrics["R1"]["cc"], row.loo_metrics["R2"]["cc"]])
    assert row.loo_metrics["R1"]["cc"] == pytest.approx(row.loo_metrics["R2"]["cc"])
    assert mean_cc == pytest.approx(row.loo_metrics["R1"]["cc"])
    assert set(summary["centre_bias"]) >= {"cc", "kl", "nss", "auc_judd"}
    assert "info_gain" not in summary["centre_bias"]  # the baseline's gain over itself
    assert summary["metrics"] == [m for m in METRICS if m in summary["model"]]


def test_one_reader_has_no_ceiling_and_the_summary_says_why(personas):
    snap = two_reader_snapshot(personas.lab_a, personas.researcher_a, readers=("R1",))
    evaluation = evaluated(snap, personas.researcher_a)
    assert evaluation.summary["ceiling"] is None
    assert "two or more readers" in evaluation.summary["notes"]["ceiling"]
    assert set(evaluation.summary["readers"]) == set()
    assert set(evaluation.summary["model_readers"]) == {"R1"}


def test_the_validation_split_has_no_reader_maps_and_says_so(snapshot, personas):
    evaluation = evaluated(snapshot, personas.researcher_a, split="val")
    assert evaluation.summary["ceiling"] is None
    assert "test split only" in evaluation.summary["notes"]["readers"]


def test_a_broken_checkpoint_fails_with_the_cause_and_keeps_no_rows(snapshot, personas):
    version = version_on(snapshot, personas.researcher_a)
    stored = storage.put(app="training", lab_id=version.lab_id, kind="checkpoints",
                         fh=io.BytesIO(b"not a checkpoint"), ext="pt")  # fmt: skip
    type(version).objects.filter(pk=version.pk).update(checkpoint_name=stored.name)
    version.refresh_from_db()
    evaluation = services.evaluation_create(version=version, enqueue=False)
    done = services.evaluation_run(evaluation_id=evaluation.pk)
    assert done.status == "failed" and "could not be loaded" in done.error
    assert not EvaluationImage.objects.filter(evaluation=evaluation).exists()


def test_a_second_delivery_does_nothing_and_a_restart_starts_over(snapshot, personas):
    evaluation = evaluated(snapshot, personas.researcher_a)
    assert services.evaluation_run(evaluation_id=evaluation.pk) is None  # not queued
    n = EvaluationImage.objects.filter(evaluation=evaluation).count()
    # A worker died mid-run: the sweeper puts it back; the rerun replaces the rows.
    Evaluation.objects.filter(pk=evaluation.pk).update(status="queued")
    again = services.evaluation_run(evaluation_id=evaluation.pk)
    assert again.status == "succeeded" and again.attempts == 2
    assert EvaluationImage.objects.filter(evaluation=evaluation).count() == n


def test_creation_refuses_what_cannot_be_evaluated(snapshot, personas):
    from django.core.exceptions import ValidationError

    version = version_on(snapshot, personas.researcher_a)
    with pytest.raises(ValidationError, match="Is one of"):
        services.evaluation_create(version=version, split="holdout", enqueue=False)
    other = two_reader_snapshot(personas.lab_b, personas.admin_b, name="theirs",
                                per_class=(4, 4, 4))  # fmt: skip
    with pytest.raises(ValidationError, match="version's lab"):
        services.evaluation_create(version=version, snapshot=other, enqueue=False)


def test_a_succeeding_job_queues_an_evaluation_of_its_version_on_the_test_split(
    snapshot, personas, settings
):
    from apps.training.models import ModelVersion
    from tests.apps.training.objects import model_version

    settings.EVALUATE_NEW_VERSIONS = True
    version = model_version(personas.lab_a, personas.researcher_a)
    auto = Evaluation.objects.get(version=version)
    assert auto.automatic and auto.split == "test" and auto.status == "queued"
    settings.EVALUATE_NEW_VERSIONS = False
    later = model_version(personas.lab_a, personas.researcher_a)
    assert not Evaluation.objects.filter(version=later).exists()
    assert ModelVersion.objects.count() == 2
