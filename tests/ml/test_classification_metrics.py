"""Classification metrics against scikit-learn to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sklearn_metrics  # the oracle: test-only
from sklearn.preprocessing import label_binarize

from ml import metrics


def _case(seed: int, n: int = 60, classes: int = 3, ties: bool = False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        probs = np.round(probs, 1)
    return labels, probs


CASES = [(0, 3, False), (1, 3, True), (2, 5, False), (3, 2, True)]


@pytest.mark.parametrize(("seed", "classes", "ties"), CASES)
def test_roc_auc_matches_sklearn(seed: int, classes: int, ties: bool) -> None:
    labels, probs = _case(seed, classes=classes, ties=ties)
    onehot = label_binarize(labels, classes=list(range(classes)))
    if classes == 2:
        onehot = np.hstack([1 - onehot, onehot])
    got = metrics.roc_auc_scores(labels, probs)
    expected_per_class = [
        sklearn_metrics.roc_auc_score(onehot[:, c], probs[:, c]) for c in range(classes)
    ]
    np.testing.assert_allclose(got["per_class"], expected_per_class, atol=1e-6)
    assert got["macro"] == pytest.approx(
        sklearn_metrics.roc_auc_score(onehot, probs, average="macro"), abs=1e-6
    )
    assert got["micro"] == pytest.approx(
        sklearn_metrics.roc_auc_score(onehot, probs, average="micro"), abs=1e-6
    )


@pytest.mark.parametrize(("seed", "classes", "ties"), CASES)
def test_roc_curves_match_sklearn(seed: int, classes: int, ties: bool) -> None:
    labels, probs = _case(seed, classes=classes, ties=ties)
    for c in range(classes):
        for drop in (True, False):
            fpr, tpr, thresholds = metrics.roc_curve(labels == c, probs[:, c], drop)
            e_fpr, e_tpr, e_thr = sklearn_metrics.roc_curve(
                labels == c, probs[:, c], drop_intermediate=drop
            )
            np.testing.assert_allclose(fpr, e_fpr, atol=1e-6)
            np.testing.assert_allclose(tpr, e_tpr, atol=1e-6)
            np.testing.assert_allclose(thresholds[1:], e_thr[1:], atol=1e-6)
            assert np.isinf(thresholds[0])


@pytest.mark.parametrize(("seed", "classes", "ties"), CASES)
def test_accuracy_f1_and_confusion_match_sklearn(seed: int, classes: int, ties: bool) -> None:
    labels, probs = _case(seed, classes=classes, ties=ties)
    preds = probs.argmax(axis=1)
    preds[preds == classes - 1] = 0  # one class never predicted: F1's zero-division case
    labels_list = list(range(classes))
    assert metrics.accuracy(labels, preds) == pytest.approx(
        sklearn_metrics.accuracy_score(labels, preds), abs=1e-12
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, preds, classes),
        sklearn_metrics.confusion_matrix(labels, preds, labels=labels_list),
    )
    f1 = metrics.f1_scores(labels, preds, classes)
    np.testing.assert_allclose(
        f1["per_class"],
        sklearn_metrics.f1_score(labels, preds, labels=labels_list, average=None, zero_division=0),
        atol=1e-6,
    )
    for average in ("macro", "micro"):
        assert f1[average] == pytest.approx(
            sklearn_metrics.f1_score(
                labels, preds, labels=labels_list, average=average, zero_division=0
            ),
            abs=1e-6,
        )


def test_classification_metrics_bundle_is_consistent() -> None:
    labels, probs = _case(0)
    out = metrics.classification_metrics(labels, probs, ["Normal", "CHF", "Pneumonia"])
    assert set(out["auc_per_class"]) == {"Normal", "CHF", "Pneumonia"}
    assert out["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    assert np.sum(out["confusion_matrix"]) == len(labels)
    assert out["roc_curves"]["CHF"]["thresholds"][0] is None  # inf is not JSON
    assert out["auc_macro"] == pytest.approx(np.mean(list(out["auc_per_class"].values())))


def test_auc_of_an_absent_class_is_nan_and_left_out_of_the_macro_mean() -> None:
    labels = np.array([0, 1, 0, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    out = metrics.roc_auc_scores(labels, probs)
    assert np.isnan(out["per_class"][2])
    assert out["macro"] == pytest.approx(1.0)
