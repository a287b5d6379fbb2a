"""Classification metrics over labels and class probabilities (scikit-learn's definitions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def _labels_probs(labels: Sequence[int], probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs must be (N, C) with N = {labels.shape[0]}, got {probs.shape}")
    return labels, probs


def accuracy(labels: Sequence[int], preds: Sequence[int]) -> float:
    """Fraction of correct predictions.

    Shape:
        ``labels, preds: (N,)``.
    """
    labels = np.asarray(labels)
    return float(np.mean(labels == np.asarray(preds)))


def confusion_matrix(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts with true classes in rows and predicted classes in columns.

    Shape:
        ``labels, preds: (N,)`` -> ``(num_classes, num_classes)``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    return np.bincount(labels * num_classes + preds, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def f1_scores(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> dict[str, object]:
    """Per-class F1 (0 where a class is neither predicted nor present), macro and micro F1.

    Returns:
        ``{"per_class": [C floats], "macro": float, "micro": float}``.
    """
    matrix = confusion_matrix(labels, preds, num_classes).astype(np.float64)
    tp = np.diag(matrix)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    per_class = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    micro = tp.sum() / matrix.sum() if matrix.sum() else 0.0
    return {
        "per_class": per_class.tolist(),
        "macro": float(per_class.mean()),
        "micro": float(micro),
    }


def _binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    positives = int(is_positive.sum())
    negatives = is_positive.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float(
        (ranks[is_positive].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def roc_auc_scores(labels: Sequence[int], probs: np.ndarray) -> dict[str, object]:
    """One-vs-rest ROC AUC per class, their macro mean, and the micro AUC.

    Micro AUC pools every (image, class) pair into one binary problem, as scikit-learn's
    ``roc_auc_score(label_binarize(y), probs, average="micro")``. A class absent from ``labels``
    gets ``nan`` and is left out of the macro mean.

    Shape:
        ``labels: (N,)``, ``probs: (N, C)``.

    Returns:
        ``{"per_class": [C floats], "macro": float, "micro": float}``.
    """
    labels, probs = _labels_probs(labels, probs)
    onehot = labels[:, None] == np.arange(probs.shape[1])[None, :]
    per_class = [_binary_auc(onehot[:, c], probs[:, c]) for c in range(probs.shape[1])]
    finite = [value for value in per_class if not np.isnan(value)]
    return {
        "per_class": per_class,
        "macro": float(np.mean(finite)) if finite else float("nan"),
        "micro": _binary_auc(onehot.ravel(), probs.ravel()),
    }


def roc_curve(
    is_positive: Sequence[bool], scores: Sequence[float], drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary ROC curve with scikit-learn's points (``sklearn.metrics.roc_curve``).

    Args:
        is_positive: which samples are positive.
        scores: higher means more positive.
        drop_intermediate: drop collinear points that do not change the curve's shape.

    Returns:
        ``(fpr, tpr, thresholds)``; the first threshold is ``inf`` (nothing predicted positive).

    Shape:
        ``is_positive, scores: (N,)`` -> three ``(K,)`` arrays.
    """
    y = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")[::-1]
    s = s[order]
    y = y[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y, dtype=np.float64)[ends]
    fps = 1 + ends - tps
    thresholds = s[ends]
    if drop_intermediate and len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.r_[0.0, fps]
    tps = np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, thresholds


def classification_metrics(
    labels: Sequence[int], probs: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, object]:
    """Accuracy, ROC AUCs, F1, the confusion matrix and the per-class ROC curves.

    Args:
        labels: true classes.
        probs: predicted class probabilities.
        class_names: names for the ROC curves' keys (default ``"0"``, ``"1"``, ...).

    Returns:
        A JSON-ready dict.

    Shape:
        ``labels: (N,)``, ``probs: (N, C)``.
    """
    labels, probs = _labels_probs(labels, probs)
    num_classes = probs.shape[1]
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    preds = probs.argmax(axis=1)
    aucs = roc_auc_scores(labels, probs)
    f1 = f1_scores(labels, preds, num_classes)
    curves = {}
    for c, name in enumerate(names):
        fpr, tpr, thresholds = roc_curve(labels == c, probs[:, c])
        curves[name] = {
            "fpr": fpr.tolist(),
            "tpr": tpr.tolist(),
            "thresholds": [float(t) if np.isfinite(t) else None for t in thresholds],
        }
    return {
        "accuracy": accuracy(labels, preds),
        "auc_per_class": dict(zip(names, aucs["per_class"], strict=True)),
        "auc_macro": aucs["macro"],
        "auc_micro": aucs["micro"],
        "f1_per_class": dict(zip(names, f1["per_class"], strict=True)),
        "f1_macro": f1["macro"],
        "f1_micro": f1["micro"],
        "confusion_matrix": confusion_matrix(labels, preds, num_classes).tolist(),
        "roc_curves": curves,
    }
