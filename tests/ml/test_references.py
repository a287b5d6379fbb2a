"""References: the mean-map baseline, pooling, and the leave-one-reader-out ceiling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.metrics import centre_bias_map, saliency_metrics
from ml.references import ceiling_row, leave_one_reader_out, mean_map, pool

SHAPE = (12, 16)


def _blob(cy: float, cx: float, sigma: float = 2.0, shape=SHAPE) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


def _fixations(cy: int, cx: int, n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xs = np.clip(cx + rng.integers(-1, 2, size=n), 0, SHAPE[1] - 1)
    ys = np.clip(cy + rng.integers(-1, 2, size=n), 0, SHAPE[0] - 1)
    return np.stack([xs, ys], axis=1)


# --- mean_map / pool --------------------------------------------------------------------------


def test_mean_map_sums_to_one_and_has_no_zeros():
    maps = [np.zeros(SHAPE), _blob(2, 3), _blob(9, 12) * 50]
    maps[1][maps[1] < 0.1] = 0.0  # zeros that only the floor can fill
    result = mean_map(maps)
    assert result.shape == SHAPE and result.dtype == np.float64
    assert result.sum() == pytest.approx(1.0, abs=1e-12)
    assert result.min() > 0


def test_mean_map_is_the_mean_for_equal_mass_inputs():
    rng = np.random.default_rng(0)
    maps = [m / m.sum() for m in rng.gamma(0.5, size=(5, *SHAPE))]
    expected = np.mean(maps, axis=0)
    np.testing.assert_allclose(mean_map(maps, floor=0.0), expected, rtol=1e-12)
    floored = mean_map(maps, floor=1e-3)
    np.testing.assert_allclose(floored, 0.999 * expected + 1e-3 / expected.size, rtol=1e-12)
    # Default floor: within 1e-6 of the mean.
    np.testing.assert_allclose(mean_map(maps), expected, atol=1e-6 * expected.max() + 1e-9)


def test_mean_map_normalises_each_map_before_averaging():
    a, b = _blob(3, 3), _blob(8, 12)
    result = mean_map([a * 1000.0, b], floor=0.0)
    np.testing.assert_allclose(result, (a / a.sum() + b / b.sum()) / 2, rtol=1e-12)


def test_mean_map_streams_from_a_generator_and_skips_empty_maps():
    maps = (m for m in [np.zeros(SHAPE), _blob(4, 4), np.zeros(SHAPE)])
    expected = _blob(4, 4) / _blob(4, 4).sum()
    np.testing.assert_allclose(mean_map(maps, floor=0.0), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("maps", "floor", "match"),
    [
        ([], 1e-6, "no non-empty map"),
        ([np.zeros(SHAPE)] * 3, 1e-6, "no non-empty map"),
        ([_blob(1, 1), np.ones((4, 4))], 1e-6, "shape"),
        ([np.zeros(SHAPE), np.ones((4, 4))], 1e-6, "shape"),
        ([-_blob(1, 1)], 1e-6, "negative"),
        ([np.full(SHAPE, np.nan)], 1e-6, "NaN"),
        ([np.ones(7)], 1e-6, "2-D"),
        ([_blob(1, 1)], 1.0, "floor"),
        ([_blob(1, 1)], -0.1, "floor"),
    ],
)
def test_mean_map_rejects(maps, floor, match):
    with pytest.raises(ValueError, match=match):
        mean_map(maps, floor=floor)


def test_pool_is_the_mean_of_normalised_maps():
    a, b = _blob(3, 3), _blob(8, 12) * 7
    result = pool([a, b])
    assert result.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(result, (a / a.sum() + b / b.sum()) / 2, rtol=1e-12)
    np.testing.assert_allclose(pool([b]), b / b.sum(), rtol=1e-12)
    with pytest.raises(ValueError):
        pool([])


def test_mean_map_serves_as_the_information_gain_baseline():
    baseline = mean_map([_blob(6, 8, sigma=4.0), np.zeros(SHAPE)])
    fix = _fixations(2, 3)
    metrics = saliency_metrics(_blob(2, 3), _blob(2, 3), fixations=fix, baseline=baseline)
    assert math.isfinite(metrics["info_gain"]) and metrics["info_gain"] > 0


# --- leave_one_reader_out ---------------------------------------------------------------------


def test_identical_readers_give_cc_one_and_kl_zero():
    blob = _blob(5, 7)
    maps = {"R1": blob, "R2": blob * 3.0, "R3": blob.copy()}
    fix = {r: _fixations(5, 7, seed=i) for i, r in enumerate(maps)}
    loo = leave_one_reader_out(maps, fix)
    assert sorted(loo) == ["R1", "R2", "R3"]
    for metrics in loo.values():
        assert metrics["cc"] == pytest.approx(1.0)
        assert metrics["kl"] == pytest.approx(0.0, abs=1e-5)  # the prediction's 1e-6 floor
        assert metrics["sim"] == pytest.approx(1.0, abs=1e-5)
        assert metrics["nss"] > 1
    row = ceiling_row(loo)
    assert row["cc"] == pytest.approx(1.0) and row["kl"] == pytest.approx(0.0, abs=1e-5)
    exact = leave_one_reader_out(maps, fix, floor=0.0)
    assert all(m["kl"] == pytest.approx(0.0, abs=1e-12) for m in exact.values())


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the floor=0 case
def test_a_reader_map_with_zeros_where_others_looked_has_a_finite_kl():
    left, right = np.zeros((8, 8)), np.zeros((8, 8))
    left[:, :4], right[:, 4:] = 1.0, 1.0
    loo = leave_one_reader_out({"R1": left, "R2": right}, {})
    assert all(math.isfinite(m["kl"]) and m["kl"] > 5 for m in loo.values())
    assert math.isinf(leave_one_reader_out({"R1": left, "R2": right}, {}, floor=0.0)["R1"]["kl"])


def test_a_reader_unlike_the_others_scores_worse():
    maps = {"A": _blob(3, 4), "B": _blob(3, 5), "C": _blob(3, 4.5), "odd": _blob(10, 14)}
    fix = {"A": _fixations(3, 4), "B": _fixations(3, 5, seed=1), "C": _fixations(3, 4, seed=2)}
    fix["odd"] = _fixations(10, 14, seed=3)
    loo = leave_one_reader_out(maps, fix)
    for metric, worse in (("cc", min), ("sim", min), ("nss", min), ("kl", max)):
        values = {r: loo[r][metric] for r in loo}
        assert worse(values, key=values.get) == "odd", (metric, values)


def test_the_prediction_target_and_fixations_are_built_from_the_others():
    maps = {"R1": _blob(3, 4), "R2": _blob(8, 10) * 4, "R3": _blob(6, 2)}
    fix = {"R1": _fixations(3, 4), "R2": None, "R3": _fixations(6, 2, seed=5)}
    baseline = centre_bias_map(SHAPE)
    other = _fixations(6, 8, n=20, seed=6)
    loo = leave_one_reader_out(maps, fix, baseline=baseline, other_fixations=other)
    normalised = {r: m / m.sum() for r, m in maps.items()}
    floored = {r: (1 - 1e-6) * m + 1e-6 / m.size for r, m in normalised.items()}
    expected = saliency_metrics(
        floored["R2"],
        (normalised["R1"] + normalised["R3"]) / 2,
        fixations=np.concatenate([fix["R1"], fix["R3"]]),
        baseline=baseline,
        other_fixations=other,
    )
    assert loo["R2"] == pytest.approx(expected)
    assert {"info_gain", "sauc", "auc_judd"} <= set(loo["R2"])
    # R1's others: R2 has no fixations, so only R3's count.
    expected_r1 = saliency_metrics(
        floored["R1"],
        (normalised["R2"] + normalised["R3"]) / 2,
        fixations=fix["R3"],
        baseline=baseline,
        other_fixations=other,
    )
    assert loo["R1"] == pytest.approx(expected_r1)


def test_without_fixations_only_the_map_metrics_are_given():
    loo = leave_one_reader_out({"R1": _blob(3, 4), "R2": _blob(4, 4)}, {})
    assert set(loo["R1"]) == {"kl", "kl_mit", "cc", "sim"}


def test_fewer_than_two_readers_give_nothing():
    assert leave_one_reader_out({"R1": _blob(3, 4)}, {"R1": _fixations(3, 4)}) == {}
    assert leave_one_reader_out({}, {}) == {}
    # A reader who never looked at the image (all-zero map) does not count.
    assert leave_one_reader_out({"R1": _blob(3, 4), "R2": np.zeros(SHAPE)}, {}) == {}
    loo = leave_one_reader_out(
        {"R1": _blob(3, 4), "R2": np.zeros(SHAPE), "R3": _blob(3, 4)}, {"R2": _fixations(1, 1)}
    )
    assert sorted(loo) == ["R1", "R3"]
    assert "nss" not in loo["R1"]  # R2's fixations are not used either


def test_leave_one_reader_out_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="shape"):
        leave_one_reader_out({"R1": _blob(3, 4), "R2": np.ones((4, 4))}, {})
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        leave_one_reader_out({"R1": _blob(3, 4), "R2": _blob(3, 4)}, {"R1": np.arange(6)})


# --- ceiling_row ------------------------------------------------------------------------------


def test_ceiling_row_is_the_nan_aware_mean_over_readers():
    loo = {
        "R1": {"cc": 0.5, "kl": 1.0, "nss": float("nan")},
        "R2": {"cc": 0.7, "kl": 2.0, "nss": 1.5},
        "R3": {"cc": 0.9, "kl": float("nan"), "nss": float("nan"), "sauc": float("nan")},
    }
    row = ceiling_row(loo)
    assert row["cc"] == pytest.approx(0.7)
    assert row["kl"] == pytest.approx(1.5)
    assert row["nss"] == pytest.approx(1.5)
    assert math.isnan(row["sauc"])
    assert list(row) == ["cc", "kl", "nss", "sauc"]
    assert ceiling_row({}) == {}


def test_ceiling_row_counts_only_readers_that_have_the_metric():
    row = ceiling_row({"R1": {"cc": 0.2, "nss": 2.0}, "R2": {"cc": 0.4}})
    assert row == pytest.approx({"cc": 0.3, "nss": 2.0})
