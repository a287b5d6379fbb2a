"""Paired comparisons: Wilcoxon as scipy computes it, Holm, rank-biserial, bootstrap, compare."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ml.evaluate import summarize
from ml.stats import (
    HIGHER_IS_BETTER,
    compare,
    higher_is_better,
    holm,
    paired_bootstrap,
    paired_test,
    rank_biserial,
)

KEYS = (
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "median_diff",
    "statistic",
    "p_value",
    "rank_biserial",
    "ci95_low",
    "ci95_high",
)


# --- holm -------------------------------------------------------------------------------------


def test_holm_hand_worked_example():
    # Sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> raised to 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_is_monotone_in_the_raw_order():
    adjusted = holm([0.2, 0.5, 0.01, 0.9])
    assert adjusted == pytest.approx([0.6, 1.0, 0.04, 1.0])
    rng = np.random.default_rng(3)
    raw = rng.uniform(size=30)
    adj = np.array(holm(raw))
    order = np.argsort(raw)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= raw) and np.all(adj <= 1)


def test_holm_nan_stays_nan_and_is_not_counted():
    adjusted = holm([0.01, float("nan"), 0.04])
    assert math.isnan(adjusted[1])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert holm([]) == []
    assert all(math.isnan(v) for v in holm([float("nan")] * 2))


def test_holm_single_value_and_ties():
    assert holm([0.03]) == pytest.approx([0.03])
    assert holm([0.01, 0.01]) == pytest.approx([0.02, 0.02])


# --- rank-biserial ----------------------------------------------------------------------------


def test_rank_biserial_hand_example_and_sign():
    # d = [1, -2, 3, 0, 4]: zero dropped; |d| ranks 1, 2, 3, 4; R+ = 1 + 3 + 4 = 8, R- = 2.
    a = [2.0, 1.0, 6.0, 5.0, 9.0]
    b = [1.0, 3.0, 3.0, 5.0, 5.0]
    assert rank_biserial(a, b) == pytest.approx((8 - 2) / 10)
    assert rank_biserial(b, a) == pytest.approx(-(8 - 2) / 10)


def test_rank_biserial_ties_get_average_ranks():
    # d = [1, -1, 2]: |d| ranks 1.5, 1.5, 3; R+ = 4.5, R- = 1.5 of 6.
    assert rank_biserial([1.0, 0.0, 2.0], [0.0, 1.0, 0.0]) == pytest.approx(0.5)


def test_rank_biserial_extremes_and_zero():
    assert rank_biserial([2, 3, 4], [1, 1, 1]) == 1.0
    assert rank_biserial([1, 1, 1], [2, 3, 4]) == -1.0
    assert rank_biserial([1, 2, 3], [1, 2, 3]) == 0.0
    assert rank_biserial([], []) == 0.0


def test_rank_biserial_agrees_with_the_wilcoxon_statistic():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(0.3, size=40)
    d = a - b
    ranks = scipy_stats.rankdata(np.abs(d))
    r_plus, r_minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    assert scipy_stats.wilcoxon(a, b).statistic == pytest.approx(min(r_plus, r_minus))
    assert rank_biserial(a, b) == pytest.approx((r_plus - r_minus) / ranks.sum())


# --- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_contains_the_mean_difference_and_is_reproducible():
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 1.0, size=60)
    b = a - rng.normal(0.5, 0.3, size=60)
    low, high = paired_bootstrap(a, b, n=2000, seed=7)
    assert low < float(np.mean(a - b)) < high
    assert paired_bootstrap(a, b, n=2000, seed=7) == (low, high)
    assert paired_bootstrap(a, b, n=2000, seed=8) != (low, high)


def test_bootstrap_matches_summarize_on_the_differences():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=25), rng.normal(size=25)
    summary = summarize(a - b, bootstrap=500, seed=3)
    assert paired_bootstrap(a, b, n=500, seed=3) == pytest.approx(
        (summary["ci95_low"], summary["ci95_high"])
    )


def test_bootstrap_in_chunks_draws_the_same_resamples(monkeypatch):
    import ml.stats

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=30), rng.normal(size=30)
    whole = paired_bootstrap(a, b, n=300, seed=1)
    monkeypatch.setattr(ml.stats, "_BOOTSTRAP_CHUNK", 30 * 7)  # 7 resamples at a time
    assert paired_bootstrap(a, b, n=300, seed=1) == pytest.approx(whole)


def test_bootstrap_edge_cases():
    assert all(math.isnan(v) for v in paired_bootstrap([], []))
    assert all(math.isnan(v) for v in paired_bootstrap([1.0, 2.0], [0.0, 0.0], n=0))
    assert paired_bootstrap([3.0], [1.0]) == (2.0, 2.0)
    # NaN pairs are dropped, not propagated.
    low, high = paired_bootstrap([1.0, np.nan, 2.0], [0.0, 5.0, 1.0], n=100)
    assert (low, high) == (1.0, 1.0)


def test_bootstrap_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1.0, 2.0], [1.0])


# --- paired_test ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["continuous", "ties_and_zeros", "large"])
def test_paired_test_equals_scipy_wilcoxon(seed, kind):
    rng = np.random.default_rng(seed)
    size = 80 if kind == "large" else 20
    a = rng.normal(size=size)
    b = a + rng.normal(0.2, 1.0, size=size)
    if kind == "ties_and_zeros":
        a = np.round(a * 2) / 2
        b = np.round(b * 2) / 2
        b[:3] = a[:3]  # exact zero differences
    result = paired_test(a, b, bootstrap=200, seed=seed)
    expected = scipy_stats.wilcoxon(a, b)
    assert result["statistic"] == pytest.approx(float(expected.statistic))
    assert result["p_value"] == pytest.approx(float(expected.pvalue))
    assert set(KEYS) <= set(result) and "note" not in result
    assert result["n"] == size
    assert result["mean_diff"] == pytest.approx(float(np.mean(a - b)))
    assert result["median_diff"] == pytest.approx(float(np.median(a - b)))
    assert result["mean_a"] == pytest.approx(float(a.mean()))
    assert result["mean_b"] == pytest.approx(float(b.mean()))
    assert result["rank_biserial"] == pytest.approx(rank_biserial(a, b))
    assert result["ci95_low"] <= result["mean_diff"] <= result["ci95_high"]


def test_paired_test_drops_nan_pairs():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=15), rng.normal(size=15)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[2] = np.nan
    b_nan[7] = np.nan
    keep = np.ones(15, dtype=bool)
    keep[[2, 7]] = False
    result = paired_test(a_nan, b_nan, bootstrap=100)
    expected = scipy_stats.wilcoxon(a[keep], b[keep])
    assert result["n"] == 13
    assert result["p_value"] == pytest.approx(float(expected.pvalue))
    assert result == paired_test(a[keep], b[keep], bootstrap=100)


@pytest.mark.parametrize(
    ("a", "b", "n", "note"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 3, "0 non-zero differences"),
        ([1.0, 2.0, 4.0], [1.0, 2.0, 3.0], 3, "1 non-zero difference of"),
        ([], [], 0, "no pairs"),
        ([np.nan, 1.0], [1.0, np.nan], 0, "no pairs"),
    ],
)
def test_paired_test_without_enough_differences_notes_why_and_does_not_raise(a, b, n, note):
    result = paired_test(a, b, bootstrap=50)
    assert result["n"] == n
    assert math.isnan(result["p_value"]) and math.isnan(result["statistic"])
    assert note in result["note"]
    assert set(KEYS) <= set(result)


def test_paired_test_all_zero_differences_still_reports_means():
    result = paired_test([0.5, 0.5], [0.5, 0.5], bootstrap=10)
    assert result["mean_a"] == 0.5 and result["mean_diff"] == 0.0
    assert result["rank_biserial"] == 0.0
    assert (result["ci95_low"], result["ci95_high"]) == (0.0, 0.0)


def test_paired_test_without_bootstrap_leaves_the_interval_nan():
    result = paired_test([1.0, 2.0, 3.0], [0.0, 0.5, 1.0], bootstrap=0)
    assert math.isnan(result["ci95_low"]) and math.isnan(result["ci95_high"])
    assert not math.isnan(result["p_value"])


# --- compare ----------------------------------------------------------------------------------


def _rows(seed: int, n: int = 30, shift: float = 0.0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    return {
        f"img{i:03d}": {
            "cc": float(rng.normal(0.5 + shift, 0.1)),
            "kl": float(rng.normal(1.0 - shift, 0.1)),
            "nss": float(rng.normal(1.0, 0.3)),
        }
        for i in range(n)
    }


def test_compare_pairs_by_key_whatever_the_order_and_ignores_unpaired_keys():
    rows_a = _rows(1, shift=0.2)
    rows_b = _rows(2)
    rows_a["only_in_a"] = {"cc": 100.0, "kl": 100.0, "nss": 100.0}
    rows_b["only_in_b"] = {"cc": -100.0, "kl": -100.0, "nss": -100.0}
    result = compare(rows_a, rows_b, ["cc", "kl", "nss"], bootstrap=300)
    items = list(rows_b.items())
    random.Random(0).shuffle(items)
    shuffled = compare(rows_a, dict(items), ["cc", "kl", "nss"], bootstrap=300)
    assert result == shuffled
    keys = sorted(set(rows_a) & set(rows_b))
    a = [rows_a[k]["cc"] for k in keys]
    b = [rows_b[k]["cc"] for k in keys]
    assert result["cc"]["n"] == 30
    assert result["cc"]["p_value"] == pytest.approx(float(scipy_stats.wilcoxon(a, b).pvalue))
    assert result["cc"]["mean_diff"] == pytest.approx(float(np.mean(np.subtract(a, b))))


def test_compare_missing_metrics_and_nans_drop_only_that_pair():
    rows_a = _rows(3)
    rows_b = _rows(4)
    rows_a["img000"]["cc"] = float("nan")
    del rows_b["img001"]["cc"]
    rows_b["img002"]["cc"] = None
    result = compare(rows_a, rows_b, ["cc", "nss"], bootstrap=0)
    assert result["cc"]["n"] == 27
    assert result["nss"]["n"] == 30


def test_compare_holm_across_metrics_and_which_model_is_better():
    rows_a = _rows(5, shift=0.3)  # a: higher cc (better), lower kl (better)
    rows_b = _rows(6)
    result = compare(rows_a, rows_b, ["cc", "kl", "nss"], bootstrap=200)
    expected = holm([result[m]["p_value"] for m in ("cc", "kl", "nss")])
    assert [result[m]["p_holm"] for m in ("cc", "kl", "nss")] == pytest.approx(expected)
    assert result["cc"]["better"] == "a"
    assert result["kl"]["better"] == "a"  # lower is better for KL
    assert result["kl"]["mean_diff"] < 0 and result["kl"]["higher_is_better"] is False
    assert result["nss"]["better"] is None  # same distribution
    flipped = compare(rows_b, rows_a, ["cc", "kl"], bootstrap=0)
    assert flipped["cc"]["better"] == "b" and flipped["kl"]["better"] == "b"


def test_compare_direction_can_be_overridden():
    rows_a = _rows(7, shift=0.3)
    rows_b = _rows(8)
    result = compare(rows_a, rows_b, ["cc"], higher_is_better={"cc": False}, bootstrap=0)
    assert result["cc"]["better"] == "b"


def test_compare_no_common_keys_never_raises():
    result = compare({"x": {"cc": 1.0}}, {"y": {"cc": 2.0}}, ["cc"], bootstrap=10)
    assert result["cc"]["n"] == 0 and result["cc"]["better"] is None
    assert math.isnan(result["cc"]["p_holm"])
    assert "note" in result["cc"]


def test_compare_is_reproducible_with_the_seed():
    rows_a, rows_b = _rows(9, shift=0.05), _rows(10)
    first = compare(rows_a, rows_b, ["cc"], bootstrap=300, seed=4)
    assert first == compare(rows_a, rows_b, ["cc"], bootstrap=300, seed=4)
    assert (
        first["cc"]["ci95_low"]
        != compare(rows_a, rows_b, ["cc"], bootstrap=300, seed=5)["cc"]["ci95_low"]
    )


def test_default_directions():
    assert HIGHER_IS_BETTER == {"kl": False, "kl_mit": False}
    assert not higher_is_better("kl") and not higher_is_better("kl_mit")
    assert higher_is_better("cc") and higher_is_better("auc_judd") and higher_is_better("sim")
    assert higher_is_better("kl", {"kl": True})
