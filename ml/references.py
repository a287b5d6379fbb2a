"""References shown beside a model: the centre-bias baseline and the inter-observer ceiling.

* :func:`mean_map` is the baseline "mean gaze map of the training split": the average of the
  sum-normalised gaze maps, mixed with a little of the uniform map so that it has no zeros (the
  information gain and KL take its logarithm).
* :func:`leave_one_reader_out` scores each reader of an image read by several readers against
  the others, the way a model is scored against the ground truth: the reader's own map is the
  prediction, the pool of the other readers' maps the target and their fixations the fixations.
  :func:`ceiling_row` averages that over readers: how well one human predicts the others, the
  ceiling a model of "the" radiologist can hope to reach on that image.

Maps are ``(H, W)`` non-negative arrays at the model's resolution; fixations are ``(N, 2)``
integer ``(x, y)`` pixels of the same frame (as :func:`ml.metrics.saliency_metrics` expects).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ml.metrics.saliency import saliency_metrics

__all__ = ["ceiling_row", "leave_one_reader_out", "mean_map", "pool"]


def _normalised(array: np.ndarray, what: str) -> np.ndarray | None:
    """The map divided by its sum, or None when it is all zeros; rejects bad values."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D map, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: the map has NaN or infinite values")
    if array.size and array.min() < 0:
        raise ValueError(f"{what}: the map has negative values")
    total = array.sum()
    if total <= 0:
        return None
    return array / total


def mean_map(maps: Iterable[np.ndarray], floor: float = 1e-6) -> np.ndarray:
    """Streaming mean of sum-normalised maps, mixed with a uniform floor; sums to 1.

    Each map is divided by its sum (all-zero maps are skipped), the normalised maps are averaged
    one at a time (only one map and the running sum are held in memory), and the mean ``m`` is
    mixed with the uniform map ``u``: ``(1 - floor) * m + floor * u``. With ``floor > 0`` no pixel
    is zero, so the result can serve as the baseline of the information gain.

    Args:
        maps: ``(H, W)`` non-negative maps (any iterable, e.g. a generator over a split).
        floor: weight of the uniform map, in ``[0, 1)``.

    Returns:
        The float64 ``(H, W)`` density.

    Raises:
        ValueError: no non-empty map, maps of different shapes, negative or non-finite values,
            or a floor outside ``[0, 1)``.
    """
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    total: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    count = 0
    for index, array in enumerate(maps):
        density = _normalised(array, f"map {index}")
        if shape is not None and np.shape(array) != shape:
            raise ValueError(f"map {index} has shape {np.shape(array)}, expected {shape}")
        shape = np.shape(array)
        if density is None:
            continue
        if total is None:
            total = density.copy()
        else:
            total += density
        count += 1
    if total is None:
        raise ValueError("no non-empty map to average")
    mean = total / count
    if floor:
        mean = (1.0 - floor) * mean + floor / mean.size
    return mean / mean.sum()


def pool(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of the sum-normalised maps (all-zero maps skipped): a density summing to 1.

    Args:
        maps: ``(H, W)`` non-negative maps of one image, e.g. one per reader.

    Returns:
        The float64 ``(H, W)`` pooled density.

    Raises:
        ValueError: as :func:`mean_map`.
    """
    return mean_map(maps, floor=0.0)


def _fixation_array(value: np.ndarray | None, reader: str) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.size == 0:
        return None
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"fixations of reader {reader!r} must be (N, 2), got {array.shape}")
    return array


def leave_one_reader_out(
    reader_maps: Mapping[str, np.ndarray],
    reader_fixations: Mapping[str, np.ndarray | None],
    *,
    baseline: np.ndarray | None = None,
    other_fixations: np.ndarray | None = None,
    floor: float = 1e-6,
) -> dict[str, dict[str, float]]:
    """Score each reader of one image against the other readers of that image.

    For each reader ``r`` (in sorted order), ``r``'s normalised map is the prediction; the target
    is :func:`pool` of the other readers' maps and the fixations are the other readers'
    fixations concatenated (readers without fixations contribute none). Readers whose map is all
    zeros (no gaze on the image) take no part, neither as prediction nor as target.

    Args:
        reader_maps: ``{reader_code: (H, W) gaze map}`` of one image.
        reader_fixations: ``{reader_code: (N, 2) integer (x, y) fixations or None}``; a reader
            missing here has no fixations.
        baseline: baseline map for the information gain (e.g. :func:`mean_map` of the training
            split); needs fixations.
        other_fixations: ``(M, 2)`` fixations of other images, for the shuffled AUC.
        floor: share of a uniform map mixed into each reader's map as a prediction, as in
            :func:`mean_map`: a blurred gaze map is exactly 0 far from its fixations, which
            would give an infinite KL wherever another reader looked.

    Returns:
        ``{reader_code: metrics}`` with the keys of :func:`ml.metrics.saliency_metrics`; ``{}``
        when fewer than 2 readers have a non-empty map.
    """
    densities: dict[str, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    for reader in sorted(reader_maps):
        array = np.asarray(reader_maps[reader])
        if shape is not None and array.shape != shape:
            raise ValueError(f"reader {reader!r}'s map has shape {array.shape}, expected {shape}")
        shape = array.shape
        density = _normalised(array, f"reader {reader!r}")
        if density is not None:
            densities[reader] = density
    if len(densities) < 2:
        return {}
    fixations = {r: _fixation_array(reader_fixations.get(r), r) for r in densities}
    out: dict[str, dict[str, float]] = {}
    for reader, prediction in densities.items():
        others = [r for r in densities if r != reader]
        target = pool([densities[r] for r in others])
        others_fix = [fixations[r] for r in others if fixations[r] is not None]
        fix = np.concatenate(others_fix, axis=0) if others_fix else None
        out[reader] = saliency_metrics(
            (1.0 - floor) * prediction + floor / prediction.size,
            target,
            fixations=fix,
            baseline=baseline,
            other_fixations=other_fixations,
        )
    return out


def ceiling_row(loo: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The image's inter-observer ceiling: each metric's mean over readers, ignoring NaN.

    Args:
        loo: the result of :func:`leave_one_reader_out` for one image.

    Returns:
        ``{metric: mean}`` over the metrics any reader has (NaN where every reader's value is
        NaN or missing); ``{}`` for an empty ``loo``.
    """
    names: list[str] = []
    for metrics in loo.values():
        names.extend(name for name in metrics if name not in names)
    row: dict[str, float] = {}
    for name in names:
        values = np.array(
            [float(m[name]) for m in loo.values() if m.get(name) is not None], dtype=np.float64
        )
        values = values[~np.isnan(values)]
        row[name] = float(values.mean()) if values.size else float("nan")
    return row
