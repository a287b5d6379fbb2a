"""Paired comparisons of per-image metrics between two models evaluated on the same images.

For each metric the per-image values of model ``a`` and model ``b`` are paired by image, and the
pairs are compared with the Wilcoxon signed-rank test (``scipy.stats.wilcoxon`` with its defaults:
two-sided, zero differences dropped), an effect size (the matched-pairs rank-biserial
correlation) and a percentile bootstrap interval of the mean difference. :func:`compare` does
this for several metrics at once and corrects the p-values across them (Holm-Bonferroni).

Differences are always ``a - b``. Whether a positive difference favours ``a`` depends on the
metric: lower is better for the KL divergences (:data:`HIGHER_IS_BETTER`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "HIGHER_IS_BETTER",
    "compare",
    "higher_is_better",
    "holm",
    "paired_bootstrap",
    "paired_test",
    "rank_biserial",
]

HIGHER_IS_BETTER: dict[str, bool] = {"kl": False, "kl_mit": False}
"""Metrics where lower is better; every metric not listed here is better when higher."""

_NAN = float("nan")
_BOOTSTRAP_CHUNK = 4_000_000  # resampled values per chunk: bounds memory for large samples


def higher_is_better(metric: str, overrides: Mapping[str, bool] | None = None) -> bool:
    """Whether larger values of ``metric`` are better.

    Args:
        metric: metric name such as ``cc`` or ``kl``.
        overrides: per-metric choices that take precedence over :data:`HIGHER_IS_BETTER`.

    Returns:
        ``overrides[metric]`` if given, else :data:`HIGHER_IS_BETTER`'s entry, else True.
    """
    if overrides is not None and metric in overrides:
        return bool(overrides[metric])
    return HIGHER_IS_BETTER.get(metric, True)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1`` (``i`` from 1); each
    adjusted value is then raised to the largest adjusted value before it, so the order of the
    p-values is kept. NaN entries stay NaN and do not count in ``m``.

    Args:
        p_values: raw p-values, in any order.

    Returns:
        The adjusted p-values, in the input's order.
    """
    values = np.asarray(list(p_values), dtype=np.float64).reshape(-1)
    out = np.full(values.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(values))
    m = valid.size
    if m:
        order = valid[np.argsort(values[valid], kind="stable")]
        scaled = values[order] * (m - np.arange(m))
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return [float(v) for v in out]


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs as float64 arrays, without the pairs where either value is NaN or infinite."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def rank_biserial(a: Sequence[float], b: Sequence[float]) -> float:
    """Matched-pairs rank-biserial correlation of ``a - b`` (Kerby's simple difference formula).

    The non-zero differences are ranked by absolute value (ties get their average rank); the
    result is (sum of the ranks of positive differences - sum of the ranks of negative ones) /
    the sum of all ranks. It runs from -1 (every ``a`` below its ``b``) to 1 (every ``a`` above).

    Args:
        a: values of the first model (pairs with NaN are dropped).
        b: values of the second model, in the same order.

    Returns:
        The correlation; 0.0 when every difference is zero or there are no pairs.
    """
    x, y = _paired(a, b)
    d = x - y
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = scipy_stats.rankdata(np.abs(d))
    total = ranks.sum()
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / total)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95 % bootstrap interval of the mean difference ``a - b``, resampling pairs.

    The resampling is that of :func:`ml.evaluate.summarize` applied to the differences, so both
    give the same interval for the same seed.

    Args:
        a: values of the first model (pairs with NaN are dropped).
        b: values of the second model, in the same order.
        n: number of resamples.
        seed: seed of the resampling.

    Returns:
        ``(low, high)``; ``(nan, nan)`` without pairs or with ``n == 0``.
    """
    x, y = _paired(a, b)
    d = x - y
    if d.size == 0 or n <= 0:
        return _NAN, _NAN
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK // d.size)
    means = np.empty(int(n))
    for start in range(0, int(n), rows_per_chunk):
        rows = min(rows_per_chunk, int(n) - start)
        means[start : start + rows] = d[rng.integers(0, d.size, size=(rows, d.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_test(
    a: Sequence[float], b: Sequence[float], *, bootstrap: int = 2000, seed: int = 0
) -> dict:
    """Wilcoxon signed-rank test, effect size and bootstrap interval of paired values.

    Pairs where either value is NaN (or infinite) are dropped first. Never raises for data
    reasons: where the test cannot run, ``statistic`` and ``p_value`` are NaN and ``note`` says
    why.

    Args:
        a: per-image values of the first model.
        b: per-image values of the second model, in the same order.
        bootstrap: resamples of the interval; 0 leaves it NaN.
        seed: seed of the resampling.

    Returns:
        ``{"n", "mean_a", "mean_b", "mean_diff", "median_diff", "statistic", "p_value",
        "rank_biserial", "ci95_low", "ci95_high"}`` (differences are ``a - b``; ``statistic``
        and ``p_value`` are those of ``scipy.stats.wilcoxon(a, b)``), plus ``"note"`` when the
        test was not run.
    """
    x, y = _paired(a, b)
    d = x - y
    out: dict = {
        "n": int(d.size),
        "mean_a": _NAN,
        "mean_b": _NAN,
        "mean_diff": _NAN,
        "median_diff": _NAN,
        "statistic": _NAN,
        "p_value": _NAN,
        "rank_biserial": _NAN,
        "ci95_low": _NAN,
        "ci95_high": _NAN,
    }
    if d.size == 0:
        out["note"] = "no pairs with both values present"
        return out
    out["mean_a"] = float(x.mean())
    out["mean_b"] = float(y.mean())
    out["mean_diff"] = float(d.mean())
    out["median_diff"] = float(np.median(d))
    out["rank_biserial"] = rank_biserial(x, y)
    out["ci95_low"], out["ci95_high"] = paired_bootstrap(x, y, n=bootstrap, seed=seed)
    nonzero = int(np.count_nonzero(d))
    if nonzero < 2:
        out["note"] = (
            f"{nonzero} non-zero difference{'s' if nonzero != 1 else ''} of {d.size} pairs: "
            "the signed-rank test needs at least 2"
        )
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. the normal approximation's notice on zeros
            result = scipy_stats.wilcoxon(x, y)
    except (ValueError, FloatingPointError) as error:  # pragma: no cover - guarded above
        out["note"] = f"wilcoxon failed: {error}"
        return out
    out["statistic"] = float(result.statistic)
    out["p_value"] = float(result.pvalue)
    return out


def _column(rows: Mapping[str, Mapping[str, float]], keys: Sequence[str], metric: str) -> list:
    values = []
    for key in keys:
        value = rows[key].get(metric)
        try:
            values.append(_NAN if value is None else float(value))
        except (TypeError, ValueError):
            values.append(_NAN)
    return values


def compare(
    rows_a: Mapping[str, Mapping[str, float]],
    rows_b: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
    *,
    higher_is_better: Mapping[str, bool] | None = None,
    bootstrap: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, dict]:
    """Compare two models metric by metric on the images both were evaluated on.

    Rows are paired by image key (keys in only one of the two are ignored; the pairs are taken
    in sorted key order, so the result does not depend on the mappings' order). A metric missing
    from a row, ``None`` or not a number counts as NaN and drops that pair for that metric only.

    Args:
        rows_a: per-image metrics of model ``a``: ``{image_key: {metric: value}}``.
        rows_b: the same for model ``b``.
        metrics: the metrics to compare; the Holm correction runs across these.
        higher_is_better: per-metric direction, overriding :data:`HIGHER_IS_BETTER`.
        bootstrap: resamples of each interval; 0 skips them.
        seed: seed of the resampling (the same for every metric).
        alpha: level of the Holm-adjusted test that decides ``better``.

    Returns:
        ``{metric: paired_test(...) + {"p_holm", "better", "higher_is_better"}}`` where
        ``better`` is ``"a"`` or ``"b"`` when ``p_holm < alpha`` (the direction is that of the
        rank-biserial correlation, which agrees with the signed-rank statistic, or of the median
        difference if that is 0), else None.
    """
    keys = sorted(set(rows_a) & set(rows_b))
    results: dict[str, dict] = {}
    for metric in metrics:
        result = paired_test(
            _column(rows_a, keys, metric),
            _column(rows_b, keys, metric),
            bootstrap=bootstrap,
            seed=seed,
        )
        result["higher_is_better"] = _direction(metric, higher_is_better)
        results[metric] = result
    adjusted = holm([results[m]["p_value"] for m in results])
    for metric, p_holm in zip(results, adjusted, strict=True):
        result = results[metric]
        result["p_holm"] = p_holm
        result["better"] = None
        if not math.isnan(p_holm) and p_holm < alpha:
            sign = np.sign(result["rank_biserial"]) or np.sign(result["median_diff"])
            if sign:
                a_higher = sign > 0
                result["better"] = "a" if a_higher == result["higher_is_better"] else "b"
    return results


def _direction(metric: str, overrides: Mapping[str, bool] | None) -> bool:
    # compare()'s keyword shadows the module-level function of the same name.
    return higher_is_better(metric, overrides)
