"""Phantom chest X-rays: anatomy, disease signs, 12-bit range, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from ml.synthetic import LOBES, cardiothoracic_ratio, make_phantom

H, W = 300, 250


@pytest.fixture(scope="module")
def trio():
    return {
        label: make_phantom(label, seed=5, height=H, width=W)
        for label in ("Normal", "CHF", "Pneumonia")
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ctr_above_half_for_chf_below_for_normal_measured_on_masks(seed):
    normal = make_phantom("Normal", seed=seed, height=H, width=W)
    chf = make_phantom("CHF", seed=seed, height=H, width=W)
    for p in (normal, chf):
        # Recompute from the masks by hand: horizontal extents of heart and thorax.
        heart_cols = np.flatnonzero(p.masks["heart"].any(axis=0))
        thorax_cols = np.flatnonzero(p.masks["thorax"].any(axis=0))
        ratio = (heart_cols[-1] - heart_cols[0] + 1) / (thorax_cols[-1] - thorax_cols[0] + 1)
        assert ratio == pytest.approx(p.ctr, abs=0.01)
        assert cardiothoracic_ratio(p.masks["heart"], p.masks["thorax"]) == p.ctr
    assert chf.ctr > 0.5
    assert normal.ctr < 0.5


def test_requested_ctr_is_met():
    p = make_phantom("CHF", seed=1, height=H, width=W, ctr=0.6)
    assert p.ctr == pytest.approx(0.6, abs=0.02)


def test_image_is_12_bit_uint16_with_dark_lungs_and_bright_spine(trio):
    p = trio["Normal"]
    assert p.image.dtype == np.uint16 and p.image.shape == (H, W)
    assert p.image.max() <= 4095
    img = p.image.astype(float)
    lungs = img[p.masks["lungs"]].mean()
    assert lungs < img[p.masks["heart"]].mean() - 300
    assert lungs < img[p.masks["mediastinum"]].mean() - 300
    # Outside the body is direct exposure: darkest of all.
    assert img[~p.masks["body"]].mean() < lungs
    # The masks are anatomically nested.
    assert not (p.masks["lungs"] & p.masks["heart"]).any()
    assert (p.masks["lungs"] & ~p.masks["thorax"]).sum() < 0.01 * p.masks["lungs"].sum()
    assert p.masks["right_lung"][:, : W // 2].sum() > 0.95 * p.masks["right_lung"].sum()
    assert not p.masks["finding"].any() and p.finding_bbox is None


def test_chf_shows_perihilar_haze_and_blunted_costophrenic_angles(trio):
    normal, chf = trio["Normal"], trio["CHF"]
    # Same seed, same patient: compare the same regions.
    lungs = normal.masks["lungs"] & chf.masks["lungs"]
    yy, xx = np.mgrid[0:H, 0:W]
    hilar = (
        lungs
        & (np.abs(yy - 0.42 * H) < 0.08 * H)
        & (np.abs(np.abs(xx - W / 2) - 0.12 * W) < 0.06 * W)
    )
    diff = chf.image.astype(float) - normal.image.astype(float)
    assert diff[hilar].mean() > 150
    # Costophrenic angles: the lowest lateral corners of the thorax.
    thorax = normal.masks["thorax"]
    rows = np.flatnonzero(thorax.any(axis=1))
    bottom = rows[-1]
    corner = thorax & (yy > bottom - 0.07 * H) & (np.abs(xx - W / 2) > 0.28 * W)
    assert corner.sum() > 20
    assert diff[corner].mean() > 200
    assert chf.masks["finding"].any()
    assert (chf.masks["finding"] & chf.masks["heart"]).sum() == chf.masks["heart"].sum()


@pytest.mark.parametrize("lobe", LOBES)
def test_pneumonia_is_one_focal_consolidation_in_the_requested_lobe(lobe):
    normal = make_phantom("Normal", seed=7, height=H, width=W)
    p = make_phantom("Pneumonia", seed=7, height=H, width=W, lobe=lobe)
    f = p.masks["finding"]
    assert p.finding_lobe == lobe
    assert f.sum() > 0.002 * H * W
    side = "right_lung" if lobe.startswith("right") else "left_lung"
    assert (f & p.masks[side]).sum() > 0.95 * f.sum()
    # Focal: a small part of its lung.
    assert f.sum() < 0.5 * p.masks[side].sum()
    diff = p.image.astype(float) - normal.image.astype(float)
    assert diff[f].mean() > 300
    assert abs(diff[p.masks["lungs"] & ~f].mean()) < 30
    upper = f.nonzero()[0].mean() < 0.40 * H
    assert upper == lobe.endswith("upper") or lobe == "left upper"


def test_same_seed_same_bytes_and_different_seed_different_image():
    a = make_phantom("Pneumonia", seed=11, height=H, width=W)
    b = make_phantom("Pneumonia", seed=11, height=H, width=W)
    c = make_phantom("Pneumonia", seed=12, height=H, width=W)
    assert a.image.tobytes() == b.image.tobytes()
    assert all((a.masks[k] == b.masks[k]).all() for k in a.masks)
    assert a.image.tobytes() != c.image.tobytes()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="label"):
        make_phantom("Cardiomegaly", seed=0)
    with pytest.raises(ValueError, match="lobe"):
        make_phantom("Pneumonia", seed=0, lobe="middle left")


def test_realistic_size_2500_by_3000():
    p = make_phantom("CHF", seed=3)
    assert p.image.shape == (3000, 2500) and p.image.dtype == np.uint16
    assert p.image.max() <= 4095 and p.ctr > 0.5
    assert p.pixel_spacing_mm[0] == pytest.approx(0.139, abs=1e-3)
    assert 0 < p.window_width <= 4095
