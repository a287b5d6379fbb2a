"""Every saliency metric against pysaliency (the benchmark's reference code) to 1e-6."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ml import metrics
from ml.losses import saliency_kl

# pysaliency 0.2.22 calls np.trapz, which numpy 2.4 removed; np.trapezoid is the same function.
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pysaliency's pkg_resources deprecation notice
    import pysaliency  # the oracle: test-only, in requirements-test.txt

SHAPE = (24, 32)


def _random_case(seed: int, n_images: int = 4, quantize: bool = False):
    rng = np.random.default_rng(seed)
    maps = rng.gamma(0.7, size=(n_images, *SHAPE))
    if quantize:
        maps = np.round(maps * 3) / 3  # many exact ties, to check their handling
    targets = rng.gamma(0.5, size=(n_images, *SHAPE))
    counts = rng.integers(3, 12, size=n_images)
    ns = np.repeat(np.arange(n_images), counts)
    xs = rng.integers(0, SHAPE[1], size=ns.size)
    ys = rng.integers(0, SHAPE[0], size=ns.size)
    xs[1], ys[1] = xs[0], ys[0]  # a pixel fixated twice
    return maps, targets, xs, ys, ns


class _MapsAreStimuli(pysaliency.SaliencyMapModel):
    """The oracle's model: each stimulus *is* the saliency map to score."""

    def _saliency_map(self, stimulus):
        return np.asarray(stimulus, dtype=float)


class _LogDensity(pysaliency.Model):
    """A probabilistic model whose log density is ``log(eps + density(map))``."""

    def __init__(self, fixed_map=None, eps=0.0):
        super().__init__(caching=False)
        self.fixed_map = fixed_map
        self.eps = eps

    def _log_density(self, stimulus):
        source = self.fixed_map if self.fixed_map is not None else np.asarray(stimulus, float)
        return np.log(self.eps + source / source.sum())


def _oracle(maps, xs, ys, ns):
    stimuli = pysaliency.Stimuli([m for m in maps])
    fixations = pysaliency.Fixations.create_without_history(
        x=xs.astype(float), y=ys.astype(float), n=ns
    )
    return stimuli, fixations


SEEDS = [0, 1, 2]


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # pysaliency's log(0)
@pytest.mark.parametrize("seed", SEEDS)
def test_distribution_metrics_match_pysaliency(seed: int) -> None:
    maps, targets, *_ = _random_case(seed)
    targets[0, :5] = 0.0  # zero target pixels, which the eps-regularised KL must handle
    for pred, target in zip(maps, targets, strict=True):
        assert metrics.cc(pred, target) == pytest.approx(
            pysaliency.metrics.CC(pred, target), abs=1e-6
        )
        assert metrics.sim(pred, target) == pytest.approx(
            pysaliency.metrics.SIM(pred, target), abs=1e-6
        )
        assert metrics.kl_divergence_mit(pred, target) == pytest.approx(
            pysaliency.metrics.MIT_KLDiv(pred, target), abs=1e-6
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_loss_kl_matches_pysaliency_and_the_training_loss(seed: int) -> None:
    maps, targets, *_ = _random_case(seed)
    maps += 1e-3  # the loss's KL assumes a softmax prediction, which is never 0
    targets += 1e-3
    for pred, target in zip(maps, targets, strict=True):
        expected = pysaliency.metrics.image_based_kl_divergence(pred, target, minimum_value=0)
        assert metrics.kl_divergence(pred, target) == pytest.approx(expected, abs=1e-6)
    logits = torch.from_numpy(np.log(maps))[:, None]
    as_loss = saliency_kl(logits.double(), torch.from_numpy(targets)[:, None]).item()
    mean_metric = np.mean([metrics.kl_divergence(p, t) for p, t in zip(maps, targets, strict=True)])
    assert as_loss == pytest.approx(mean_metric, abs=1e-5)


def test_loss_kl_ignores_zero_target_pixels() -> None:
    pred = np.array([[0.25, 0.75]])
    assert metrics.kl_divergence(pred, np.array([[2.0, 0.0]])) == pytest.approx(np.log(4))


@pytest.mark.parametrize("quantize", [False, True], ids=["continuous", "ties"])
@pytest.mark.parametrize("seed", SEEDS)
def test_location_metrics_match_pysaliency(seed: int, quantize: bool) -> None:
    maps, _, xs, ys, ns = _random_case(seed, quantize=quantize)
    stimuli, fixations = _oracle(maps, xs, ys, ns)
    model = _MapsAreStimuli(caching=False)
    judd = model.AUC_per_image(stimuli, fixations, nonfixations="unfixated", thresholds="fixations")
    borji = model.AUC_per_image(stimuli, fixations, nonfixations="uniform")
    shuffled = model.AUC_per_image(stimuli, fixations, nonfixations="shuffled")
    nss_per_fixation = model.NSSs(stimuli, fixations)
    for n, smap in enumerate(maps):
        mine = ns == n
        others = ~mine
        assert metrics.nss(smap, xs[mine], ys[mine]) == pytest.approx(
            nss_per_fixation[mine].mean(), abs=1e-6
        )
        assert metrics.auc_judd(smap, xs[mine], ys[mine]) == pytest.approx(judd[n], abs=1e-6)
        assert metrics.auc_borji(smap, xs[mine], ys[mine]) == pytest.approx(borji[n], abs=1e-6)
        assert metrics.shuffled_auc(
            smap, xs[mine], ys[mine], xs[others], ys[others]
        ) == pytest.approx(shuffled[n], abs=1e-6)


def test_auc_judd_matches_pysaliency_default_jittered_auc_on_continuous_maps() -> None:
    maps, _, xs, ys, ns = _random_case(5, n_images=3)
    stimuli, fixations = _oracle(maps, xs, ys, ns)
    # pysaliency's AUC_Judd adds 1e-7 noise; on tie-free maps that changes no ranking.
    expected = _MapsAreStimuli(caching=False).AUC_Judd(stimuli, fixations)
    ours = np.mean([metrics.auc_judd(m, xs[ns == n], ys[ns == n]) for n, m in enumerate(maps)])
    assert ours == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("eps", [0.0, metrics.MIT_EPS])
@pytest.mark.parametrize("seed", SEEDS)
def test_information_gain_matches_pysaliency(seed: int, eps: float) -> None:
    maps, _, xs, ys, ns = _random_case(seed)
    maps += 1e-3
    baseline = metrics.centre_bias_map(SHAPE)
    for n, smap in enumerate(maps):
        mine = ns == n
        stimuli, fixations = _oracle(smap[None], xs[mine], ys[mine], np.zeros(mine.sum(), int))
        expected = _LogDensity(eps=eps).information_gain(
            stimuli, fixations, baseline_model=_LogDensity(baseline, eps=eps)
        )
        got = metrics.information_gain(smap, baseline, xs[mine], ys[mine], eps=eps)
        assert got == pytest.approx(expected, abs=1e-6)


def test_metrics_reward_a_map_that_predicts_the_fixations() -> None:
    rng = np.random.default_rng(3)
    xs = rng.integers(10, 14, size=20)
    ys = rng.integers(8, 12, size=20)
    good = np.zeros(SHAPE)
    np.add.at(good, (ys, xs), 1.0)
    good += 1e-3
    flat = np.ones(SHAPE)
    assert metrics.auc_borji(good, xs, ys) > 0.95 > 0.5 == metrics.auc_borji(flat, xs, ys)
    assert metrics.nss(good, xs, ys) > 3 and metrics.nss(flat, xs, ys) == 0
    assert metrics.information_gain(good, flat, xs, ys) > 3
    assert metrics.cc(good, good) == pytest.approx(1.0)
    assert metrics.sim(good, good) == pytest.approx(1.0)


def test_saliency_metrics_reports_what_the_ground_truth_allows() -> None:
    maps, targets, xs, ys, _ = _random_case(0)
    fixations = np.stack([xs[:4], ys[:4]], axis=1)
    only_maps = metrics.saliency_metrics(maps[0], targets[0])
    assert set(only_maps) == {"kl", "kl_mit", "cc", "sim"}
    everything = metrics.saliency_metrics(
        maps[0], targets[0], fixations, metrics.centre_bias_map(SHAPE), fixations[::-1] + 1
    )
    assert set(everything) == {*only_maps, "nss", "auc_judd", "auc_borji", "info_gain", "sauc"}
    assert everything["cc"] == metrics.cc(maps[0], targets[0])


def test_fixations_outside_the_map_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        metrics.nss(np.ones(SHAPE), [SHAPE[1]], [0])
