"""Saliency metrics of the MIT/Tuebingen benchmark, per image, in float64.

Conventions follow pysaliency (the reference implementation, used as the oracle in the tests):
maps are ``(H, W)`` arrays, fixations are integer pixel columns ``xs`` and rows ``ys``, and the
*predicted* map comes first, the ground truth second. Location-based metrics (NSS, the AUCs,
information gain) average over the image's fixations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIT_EPS = 2.2204e-16
"""The regulariser of the MIT benchmark's KL and information gain (MATLAB's ``eps``)."""


def _as_map(saliency_map: np.ndarray) -> np.ndarray:
    array = np.asarray(saliency_map, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {array.shape}")
    return array


def _as_density(saliency_map: np.ndarray) -> np.ndarray:
    """Shift to be non-negative and divide by the sum; a map of zeros becomes uniform."""
    array = _as_map(saliency_map)
    if array.min() < 0:
        array = array - array.min()
    total = array.sum()
    if total > 0:
        return array / total
    return np.full_like(array, 1.0 / array.size)


def _fixation_values(saliency_map: np.ndarray, xs: Sequence[int], ys: Sequence[int]) -> np.ndarray:
    xs = np.asarray(xs, dtype=np.int64)
    ys = np.asarray(ys, dtype=np.int64)
    if xs.shape != ys.shape or xs.ndim != 1 or xs.size == 0:
        raise ValueError("xs and ys must be equal-length, non-empty 1-D sequences")
    height, width = saliency_map.shape
    if xs.min() < 0 or ys.min() < 0 or xs.max() >= width or ys.max() >= height:
        raise ValueError(f"fixations fall outside the {height}x{width} map")
    return saliency_map[ys, xs]


def kl_divergence(pred: np.ndarray, target: np.ndarray) -> float:
    """KL(target || pred) of the sum-normalised maps, as the training loss defines it.

    Pixels where the target is 0 contribute 0; the prediction is a softmax and so positive.

    Args:
        pred: predicted map (a probability map, or anything non-negative).
        target: ground-truth gaze map.

    Returns:
        ``sum q log(q / p)`` in nats.

    Shape:
        ``pred, target: (H, W)``.
    """
    p = _as_density(pred)
    q = _as_density(target)
    mask = q > 0
    return float(np.sum(q[mask] * (np.log(q[mask]) - np.log(p[mask]))))


def kl_divergence_mit(pred: np.ndarray, target: np.ndarray, eps: float = MIT_EPS) -> float:
    """The MIT benchmark's KL: ``sum Q log(eps + Q / (P + eps))`` of sum-normalised maps.

    Args:
        pred: predicted map ``P``.
        target: ground-truth map ``Q``.
        eps: regulariser (MATLAB's ``eps`` by default).

    Returns:
        The divergence in nats.

    Shape:
        ``pred, target: (H, W)``.
    """
    p = _as_density(pred)
    q = _as_density(target)
    return float(np.sum(q * np.log(eps + q / (p + eps))))


def cc(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation of two maps; 0 when only the prediction is constant.

    Shape:
        ``pred, target: (H, W)``.
    """
    a = _as_map(pred).ravel()
    b = _as_map(target).ravel()
    a = a - a.mean()
    b = b - b.mean()
    norm_a = np.sqrt(np.sum(a * a))
    norm_b = np.sqrt(np.sum(b * b))
    if norm_a == 0:
        return 0.0 if norm_b > 0 else float("nan")
    if norm_b == 0:
        return float("nan")
    return float(np.sum(a * b) / (norm_a * norm_b))


def sim(pred: np.ndarray, target: np.ndarray) -> float:
    """Similarity (histogram intersection): ``sum min(P, Q)`` of the sum-normalised maps.

    Shape:
        ``pred, target: (H, W)``.
    """
    return float(np.minimum(_as_density(pred), _as_density(target)).sum())


def nss(saliency_map: np.ndarray, xs: Sequence[int], ys: Sequence[int]) -> float:
    """Normalised scanpath saliency: mean of the standardised map at the fixations.

    Args:
        saliency_map: predicted map.
        xs: fixation columns.
        ys: fixation rows.

    Returns:
        Mean over fixations of ``(s - mean) / std`` (``std`` of the population; skipped if 0).

    Shape:
        ``saliency_map: (H, W)``, ``xs, ys: (N,)``.
    """
    array = _as_map(saliency_map)
    values = _fixation_values(array, xs, ys) - array.mean()
    std = array.std()
    if std:
        values = values / std
    return float(values.mean())


def _mann_whitney_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(pos > neg) + P(pos == neg) / 2: the trapezoidal area under the ROC over all thresholds."""
    negatives = np.sort(negatives)
    below = np.searchsorted(negatives, positives, side="left")
    below_or_equal = np.searchsorted(negatives, positives, side="right")
    return float(np.mean(below + 0.5 * (below_or_equal - below)) / negatives.size)


def auc_judd(saliency_map: np.ndarray, xs: Sequence[int], ys: Sequence[int]) -> float:
    """AUC-Judd: thresholds at the fixated values; negatives are all unfixated pixels.

    As pysaliency's ``AUC_Judd(jitter=False)``: the hit rate is the fraction of fixations at or
    above each threshold, the false-positive rate the fraction of unfixated pixels, and the curve
    runs from (0, 0) to (1, 1) by the trapezoidal rule. Ties between map values are not broken
    (pysaliency adds 1e-7 noise by default; do so before calling if the map is flat).

    Shape:
        ``saliency_map: (H, W)``, ``xs, ys: (N,)``.
    """
    array = _as_map(saliency_map)
    positives = _fixation_values(array, xs, ys)
    fixated = np.zeros(array.shape, dtype=bool)
    fixated[np.asarray(ys), np.asarray(xs)] = True
    negatives = array[~fixated]
    if negatives.size == 0:
        raise ValueError("every pixel is fixated: AUC-Judd has no negatives")
    thresholds = np.sort(
        np.concatenate(
            [
                [max(positives.max(), negatives.max()) + 1],
                positives,
                [min(positives.min(), negatives.min())],
            ]
        )
    )[::-1]
    sorted_pos = np.sort(positives)
    sorted_neg = np.sort(negatives)
    hits = (
        sorted_pos.size - np.searchsorted(sorted_pos, thresholds, side="left")
    ) / sorted_pos.size
    false = (
        sorted_neg.size - np.searchsorted(sorted_neg, thresholds, side="left")
    ) / sorted_neg.size
    hits = np.concatenate([[0.0], hits])
    false = np.concatenate([[0.0], false])
    return float(np.trapezoid(hits, false))


def auc_borji(saliency_map: np.ndarray, xs: Sequence[int], ys: Sequence[int]) -> float:
    """AUC-Borji with its random sampling taken to the limit: negatives are all pixels.

    Borji's version draws uniform random pixels as negatives 100 times and averages; the exact
    expectation (pysaliency's ``AUC(nonfixations='uniform')``) has no sampling noise, so results
    are reproducible to the last digit.

    Shape:
        ``saliency_map: (H, W)``, ``xs, ys: (N,)``.
    """
    array = _as_map(saliency_map)
    return _mann_whitney_auc(_fixation_values(array, xs, ys), array.ravel())


def shuffled_auc(
    saliency_map: np.ndarray,
    xs: Sequence[int],
    ys: Sequence[int],
    other_xs: Sequence[int],
    other_ys: Sequence[int],
) -> float:
    """Shuffled AUC: negatives are the fixations of other images, which cancels centre bias.

    Args:
        saliency_map: predicted map.
        xs, ys: this image's fixations.
        other_xs, other_ys: fixations of other images, in this map's pixel coordinates.

    Returns:
        The area under the ROC over all thresholds (ties count half).

    Shape:
        ``saliency_map: (H, W)``, ``xs, ys: (N,)``, ``other_xs, other_ys: (M,)``.
    """
    array = _as_map(saliency_map)
    positives = _fixation_values(array, xs, ys)
    negatives = _fixation_values(array, other_xs, other_ys)
    return _mann_whitney_auc(positives, negatives)


def information_gain(
    saliency_map: np.ndarray,
    baseline_map: np.ndarray,
    xs: Sequence[int],
    ys: Sequence[int],
    eps: float = MIT_EPS,
) -> float:
    """Information gain over a baseline, in bits per fixation.

    Both maps are normalised to densities; the result is the mean over fixations of
    ``log2(eps + P) - log2(eps + B)``. Use the centre bias (:func:`centre_bias_map`) or a
    leave-one-out map of other images' fixations as the baseline, and say which.

    Shape:
        ``saliency_map, baseline_map: (H, W)``, ``xs, ys: (N,)``.
    """
    p = _as_density(saliency_map)
    b = _as_density(baseline_map)
    if p.shape != b.shape:
        raise ValueError(f"map shapes differ: {p.shape} vs {b.shape}")
    gain = np.log2(eps + _fixation_values(p, xs, ys)) - np.log2(eps + _fixation_values(b, xs, ys))
    return float(gain.mean())


def centre_bias_map(shape: tuple[int, int], sigma_fraction: float = 0.25) -> np.ndarray:
    """An isotropic Gaussian at the image centre, summing to 1: the usual centre-bias baseline.

    Args:
        shape: ``(H, W)``.
        sigma_fraction: standard deviation as a fraction of each side.

    Returns:
        The density.

    Shape:
        ``(H, W)``.
    """
    height, width = shape
    ys = (np.arange(height) - (height - 1) / 2) / (sigma_fraction * height)
    xs = (np.arange(width) - (width - 1) / 2) / (sigma_fraction * width)
    density = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    return density / density.sum()


def saliency_metrics(
    pred: np.ndarray,
    target: np.ndarray,
    fixations: np.ndarray | None = None,
    baseline: np.ndarray | None = None,
    other_fixations: np.ndarray | None = None,
) -> dict[str, float]:
    """All saliency metrics that the given ground truth allows, for one image.

    Args:
        pred: predicted map (probabilities).
        target: ground-truth gaze density.
        fixations: ``(N, 2)`` integer ``(x, y)`` pixels; enables NSS, AUC-Judd, AUC-Borji.
        baseline: baseline map for information gain (needs ``fixations``).
        other_fixations: ``(M, 2)`` fixations of other images; enables shuffled AUC.

    Returns:
        ``kl``, ``kl_mit``, ``cc``, ``sim`` and, where possible, ``nss``, ``auc_judd``,
        ``auc_borji``, ``sauc``, ``info_gain``.
    """
    out = {
        "kl": kl_divergence(pred, target),
        "kl_mit": kl_divergence_mit(pred, target),
        "cc": cc(pred, target),
        "sim": sim(pred, target),
    }
    if fixations is not None and len(fixations):
        xs, ys = np.asarray(fixations, dtype=np.int64).T
        out["nss"] = nss(pred, xs, ys)
        out["auc_judd"] = auc_judd(pred, xs, ys)
        out["auc_borji"] = auc_borji(pred, xs, ys)
        if baseline is not None:
            out["info_gain"] = information_gain(pred, baseline, xs, ys)
        if other_fixations is not None and len(other_fixations):
            other_xs, other_ys = np.asarray(other_fixations, dtype=np.int64).T
            out["sauc"] = shuffled_auc(pred, xs, ys, other_xs, other_ys)
    return out
