"""Saliency and classification metrics as plain functions over numpy arrays."""

from ml.metrics.classification import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    f1_scores,
    roc_auc_scores,
    roc_curve,
)
from ml.metrics.saliency import (
    MIT_EPS,
    auc_borji,
    auc_judd,
    cc,
    centre_bias_map,
    information_gain,
    kl_divergence,
    kl_divergence_mit,
    nss,
    saliency_metrics,
    shuffled_auc,
    sim,
)

__all__ = [
    "MIT_EPS",
    "accuracy",
    "auc_borji",
    "auc_judd",
    "cc",
    "centre_bias_map",
    "classification_metrics",
    "confusion_matrix",
    "f1_scores",
    "information_gain",
    "kl_divergence",
    "kl_divergence_mit",
    "nss",
    "roc_auc_scores",
    "roc_curve",
    "saliency_metrics",
    "shuffled_auc",
    "sim",
]
