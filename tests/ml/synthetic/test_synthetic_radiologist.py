"""Simulated radiologists: gamma fixations, main sequence, blinks, glances, dwell, offsets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ml.synthetic import (
    DisplayGeometry,
    Radiologist,
    letterbox_view,
    make_phantom,
    simulate_calibration,
    simulate_reading,
)
from ml.synthetic.radiologist import BLINK, FIXATION, SACCADE

H, W = 300, 250


@pytest.fixture(scope="module")
def normal():
    return make_phantom("Normal", seed=1, height=H, width=W)


@pytest.fixture(scope="module")
def pneumonia():
    return make_phantom("Pneumonia", seed=1, height=H, width=W, lobe="right lower")


def test_fixation_durations_are_gamma_with_the_configured_mean(normal):
    reader = Radiologist(mean_fixation_ms=300.0, fixation_shape=4.0, n_fixations=500)
    r = simulate_reading(normal, reader, rate_hz=1000, seed=2)
    d_ms = r.fixations.duration_s * 1000
    assert d_ms.mean() == pytest.approx(300.0, rel=0.07)
    # Shape from the coefficient of variation: var / mean^2 = 1 / k.
    assert d_ms.var() / d_ms.mean() ** 2 == pytest.approx(1 / 4.0, rel=0.25)
    assert stats.kstest(d_ms, stats.gamma(4.0, scale=75.0).cdf).pvalue > 0.01
    # An exponential (k = 1) with the same mean is rejected: the shape matters.
    assert stats.kstest(d_ms, stats.expon(scale=300.0).cdf).pvalue < 1e-6


def test_samples_are_at_the_tracker_rate_and_events_tile_the_timeline(normal):
    r = simulate_reading(normal, Radiologist(), rate_hz=60, seed=3)
    assert np.allclose(np.diff(r.t), 1 / 60)
    f = r.fixations
    for k in range(len(f)):
        a, n = f.first_sample[k], f.n_samples[k]
        assert (r.fixation_index[a : a + n] == k).all()
        assert (r.event[a : a + n] == FIXATION).all()
        assert f.start_s[k] == pytest.approx(r.t[a])
        assert f.duration_s[k] == pytest.approx(n / 60)
    assert (r.event == FIXATION).sum() == f.n_samples.sum()
    assert set(np.unique(r.event)) <= {FIXATION, SACCADE, BLINK}


def test_saccades_follow_the_main_sequence(normal):
    r = simulate_reading(normal, Radiologist(n_fixations=150), rate_hz=1000, seed=4)
    amp, peak = r.saccade_amplitude_deg, r.saccade_peak_velocity_deg_s
    assert amp.size == len(r.fixations) - 1
    big = amp > 2
    assert stats.spearmanr(amp, peak).statistic > 0.9
    assert (peak[big] > 80).all() and (peak < 800).all()
    # Measured on the samples: the fastest sample-to-sample speed sits inside saccades.
    ppd = r.geometry.pixels_per_degree()[0]
    speed = np.hypot(np.diff(r.x), np.diff(r.y)) / ppd * 1000
    fastest = np.nanargmax(speed)
    assert r.event[fastest] == SACCADE or r.event[fastest + 1] == SACCADE


def test_blinks_are_invalid_samples_and_pupil_is_missing_then(normal):
    r = simulate_reading(
        normal, Radiologist(blink_rate_hz=1.5, n_fixations=80), rate_hz=250, seed=5
    )
    assert r.blink_count > 5
    blink = r.event == BLINK
    assert not r.valid[blink].any()
    assert np.isnan(r.x[blink]).all() and np.isnan(r.pupil_mm[blink]).all()
    starts = np.flatnonzero(blink & ~np.r_[False, blink[:-1]])
    assert starts.size == r.blink_count
    lengths = np.diff(np.flatnonzero(np.diff(np.r_[0, blink.astype(int), 0])))[::2]
    assert 0.05 < np.median(lengths) / 250 < 0.4
    assert np.nanmin(r.pupil_mm) > 2.0 and np.nanmax(r.pupil_mm) < 6.0


def test_microsaccadic_jitter_is_small_but_present(normal):
    r = simulate_reading(normal, Radiologist(n_fixations=60), rate_hz=1000, seed=6)
    ppd = r.geometry.pixels_per_degree()[0]
    spreads = []
    for k in range(len(r.fixations)):
        a, n = r.fixations.first_sample[k], r.fixations.n_samples[k]
        ok = r.valid[a : a + n]
        if ok.sum() > 20:
            spreads.append(np.std(r.x[a : a + n][ok]) / ppd)
    assert 0.02 < np.median(spreads) < 0.5


def test_glances_off_the_image_land_outside_it(normal):
    reader = Radiologist(off_image_probability=0.3, n_fixations=60)
    r = simulate_reading(normal, reader, rate_hz=60, seed=7)
    f = r.fixations
    off = ~f.on_image
    assert 5 <= off.sum() <= 35
    outside = (f.image_x < 0) | (f.image_x >= W) | (f.image_y < 0) | (f.image_y >= H)
    assert np.array_equal(outside, off)
    x0, y0, x1, y1 = r.views[0].screen_rect
    inside_rect = (f.screen_x >= x0) & (f.screen_x <= x1) & (f.screen_y >= y0) & (f.screen_y <= y1)
    assert not inside_rect[off].any()
    assert (f.screen_x[off] >= 0).all() and (f.screen_x[off] < 1920).all()


@pytest.mark.parametrize("style", ["systematic", "focused"])
def test_more_dwell_per_area_on_the_finding_than_elsewhere(pneumonia, style):
    r = simulate_reading(pneumonia, Radiologist(style=style), rate_hz=60, seed=8)
    f = r.fixations
    finding = pneumonia.masks["finding"]
    on = f.on_image
    ix = np.clip(f.image_x[on].astype(int), 0, W - 1)
    iy = np.clip(f.image_y[on].astype(int), 0, H - 1)
    hit = finding[iy, ix]
    dwell_in = f.duration_s[on][hit].sum() / finding.sum()
    dwell_out = f.duration_s[on][~hit].sum() / (~finding).sum()
    assert dwell_in > 5 * dwell_out


def test_a_systematic_reader_covers_both_lungs_in_order(normal):
    r = simulate_reading(
        normal, Radiologist(style="systematic", n_fixations=40), rate_hz=60, seed=9
    )
    targets = r.fixations.target
    first_right = targets.index("right_upper")
    first_left = targets.index("left_upper")
    assert first_right < first_left
    assert {"right_lower", "left_lower", "heart"} <= set(targets)


def test_recorded_gaze_is_offset_by_the_calibration_error(normal):
    reader = Radiologist(calibration_offset_deg=(0.8, -0.5), off_image_probability=0.0)
    r = simulate_reading(normal, reader, rate_hz=250, seed=10)
    ppd = r.geometry.pixels_per_degree()
    f = r.fixations
    dx, dy = [], []
    for k in range(len(f)):
        a, n = f.first_sample[k], f.n_samples[k]
        ok = r.valid[a : a + n]
        dx.append(np.mean(r.x[a : a + n][ok]) - f.screen_x[k])
        dy.append(np.mean(r.y[a : a + n][ok]) - f.screen_y[k])
    assert np.mean(dx) == pytest.approx(0.8 * ppd[0], abs=1.5)
    assert np.mean(dy) == pytest.approx(-0.5 * ppd[1], abs=1.5)
    cal = simulate_calibration(reader, rate_hz=60, seed=1)
    assert np.mean(cal.x) - cal.dot[0] == pytest.approx(0.8 * ppd[0], abs=1.5)


def test_true_fixations_map_between_image_and_screen_through_their_view(pneumonia):
    r = simulate_reading(pneumonia, Radiologist(n_fixations=40), rate_hz=60, seed=11, zoom=True)
    assert len(r.views) == 3
    zoomed = r.views[1]
    assert zoomed.scale == pytest.approx(2 * r.views[0].scale)
    f = r.fixations
    for k in range(len(f)):
        v = r.views[f.view_index[k]]
        sx, sy = v.image_to_screen(f.image_x[k], f.image_y[k])
        assert (sx, sy) == pytest.approx((f.screen_x[k], f.screen_y[k]))
        assert r.view_index_at(f.start_s[k]) == f.view_index[k]
    # The zoom centres on the finding.
    x0, y0, x1, y1 = r.finding_bbox
    ir = zoomed.image_rect
    assert ir[0] <= (x0 + x1) / 2 <= ir[2] and ir[1] <= (y0 + y1) / 2 <= ir[3]


def test_letterbox_view_and_pixels_per_degree():
    geo = DisplayGeometry()
    v = letterbox_view(2500, 3000, geo)
    assert v.screen_rect[1] == 0 and v.screen_rect[3] == 1080
    assert (v.screen_rect[0] + v.screen_rect[2]) / 2 == pytest.approx(960)
    ppd = geo.pixels_per_degree()
    expected = 1920 / 531.0 * 650.0 * math.tan(math.radians(1.0))
    assert ppd[0] == pytest.approx(expected, rel=0.01)
    assert geo.pixels_per_degree(0, 540)[0] > ppd[0]  # obliquely seen edges: more px per degree


def test_same_seed_same_reading(normal):
    a = simulate_reading(normal, Radiologist(style="focused"), seed=12)
    b = simulate_reading(normal, Radiologist(style="focused"), seed=12)
    c = simulate_reading(normal, Radiologist(style="focused"), seed=13)
    assert np.array_equal(a.x, b.x, equal_nan=True) and np.array_equal(a.valid, b.valid)
    assert a.x.size != c.x.size or not np.array_equal(a.x, c.x, equal_nan=True)


def test_bad_reader_is_refused():
    with pytest.raises(ValueError, match="style"):
        Radiologist(style="random")
    with pytest.raises(ValueError, match="expertise"):
        Radiologist(expertise=1.5)
