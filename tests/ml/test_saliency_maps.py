"""Saliency targets: the direct fixation density, pooling, the original mode against OpenCV, keys.

OpenCV (opencv-python-headless) is the test-only oracle for the original mode; the module itself
never imports it. Sizes are reduced where the comparison stays meaningful (the real 501-px kernel
on a smaller image and canvas); one full-size comparison is marked slow.
"""

from __future__ import annotations

import cv2  # the oracle: test-only, in requirements-test.txt
import numpy as np
import pytest
from scipy import ndimage

import ml.saliency_maps as sm
from ml.data.resize import letterbox, pad_and_stride
from ml.gaze.geometry import DisplayGeometry
from ml.gaze.mapping import ImageRect
from ml.saliency_maps import (
    fixation_density,
    gaussian_blur_reflect101,
    opencv_gaussian_kernel,
    original_mtunet_target,
    pool_maps,
    sigma_px_for_degrees,
    target_cache_key,
)


def _moments(m: np.ndarray) -> tuple[float, float, float, float]:
    """Centroid and variance per axis in continuous target coordinates (pixel j centred j + 0.5)."""
    m = np.asarray(m, dtype=np.float64)
    m = m / m.sum()
    yc = np.arange(m.shape[0]) + 0.5
    xc = np.arange(m.shape[1]) + 0.5
    py, px = m.sum(axis=1), m.sum(axis=0)
    my, mx = py @ yc, px @ xc
    return mx, my, px @ (xc - mx) ** 2, py @ (yc - my) ** 2


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# --------------------------------------------------------------------------------------------
# Default mode
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigma", "expected_sx", "expected_sy"),
    [(10.0, 10.0, 10.0), (np.array([[8.0, 14.0]]), 8.0, 14.0), (np.array([12.0]), 12.0, 12.0)],
)
def test_single_fixation_is_a_gaussian_at_the_fixation(sigma, expected_sx, expected_sy):
    x, y = 151.3, 203.7
    m = fixation_density(
        np.array([[x, y]]),
        np.array([250.0]),
        image_size=(400, 300),
        target_size=(200, 150),
        sigma_px=sigma,
    )
    assert m.dtype == np.float32 and m.shape == (200, 150)
    assert m.sum() == pytest.approx(1.0, abs=1e-5)
    mx, my, vx, vy = _moments(m)
    # Half resolution: the centre halves, and integrating over a pixel adds its variance 1/12.
    assert mx == pytest.approx(x * 0.5, abs=1e-3)
    assert my == pytest.approx(y * 0.5, abs=1e-3)
    assert vx == pytest.approx((expected_sx * 0.5) ** 2 + 1 / 12, rel=2e-3)
    assert vy == pytest.approx((expected_sy * 0.5) ** 2 + 1 / 12, rel=2e-3)
    assert np.unravel_index(np.argmax(m), m.shape) == (int(y * 0.5), int(x * 0.5))


def test_durations_weight_the_fixations_and_the_map_sums_to_one():
    xy = np.array([[60.0, 100.0], [240.0, 100.0]])
    m = fixation_density(
        xy, np.array([100.0, 300.0]), image_size=(200, 300), target_size=(100, 150), sigma_px=8.0
    )
    left, right = m[:, :75].sum(), m[:, 75:].sum()
    assert m.sum() == pytest.approx(1.0, abs=1e-5)
    assert right / left == pytest.approx(3.0, rel=1e-5)
    # A zero-duration fixation adds nothing; scaling every duration changes nothing.
    with_zero = fixation_density(
        np.vstack([xy, [[150.0, 50.0]]]),
        np.array([100.0, 300.0, 0.0]),
        image_size=(200, 300),
        target_size=(100, 150),
        sigma_px=8.0,
    )
    scaled = fixation_density(
        xy, np.array([1.0, 3.0]), image_size=(200, 300), target_size=(100, 150), sigma_px=8.0
    )
    np.testing.assert_allclose(with_zero, m, atol=1e-9)
    np.testing.assert_allclose(scaled, m, atol=1e-9)


def test_shown_rect_draws_only_over_the_part_shown_and_drops_the_rest():
    xy = np.array([[100.0, 100.0], [250.0, 100.0]])
    rects = np.array([[100.0, 0.0, 300.0, 200.0], [0.0, 0.0, 300.0, 200.0]])
    m = fixation_density(
        xy,
        np.array([200.0, 200.0]),
        image_size=(200, 300),
        target_size=(200, 300),
        sigma_px=10.0,
        shown_rect=rects,
    )
    # Fixation 0 was shown cut through its centre: half its mass survives (REFLACX semantics).
    assert m[:, :100].sum() == 0.0
    near0 = m[:, 100:175].sum()
    near1 = m[:, 175:].sum()
    assert near0 / near1 == pytest.approx(0.5, rel=1e-6)
    # One rect for all fixations: nothing outside it.
    one = fixation_density(
        xy,
        np.array([200.0, 200.0]),
        image_size=(200, 300),
        target_size=(100, 150),
        sigma_px=10.0,
        shown_rect=(50.0, 20.0, 280.0, 160.0),
    )
    assert one[:, :25].sum() == 0 and one[:, 140:].sum() == 0
    assert one[:10].sum() == 0 and one[80:].sum() == 0
    assert one.sum() == pytest.approx(1.0, abs=1e-5)


def test_off_image_fixations_are_excluded_unless_asked_for():
    on = np.array([[150.0, 100.0]])
    both = np.array([[150.0, 100.0], [-4.0, 100.0]])
    kwargs = dict(image_size=(200, 300), target_size=(100, 150), sigma_px=10.0)
    only_on = fixation_density(on, np.array([200.0]), **kwargs)
    default = fixation_density(both, np.array([200.0, 200.0]), **kwargs)
    np.testing.assert_array_equal(default, only_on)
    kept = fixation_density(both, np.array([200.0, 200.0]), include_off_image=True, **kwargs)
    assert kept[:, :5].sum() > 0.1  # the in-image tail of the fixation just left of the image
    assert kept[:, :5].sum() > 100 * only_on[:, :5].sum()
    # NaN positions (blinks, track loss) never count.
    nan = fixation_density(
        np.array([[150.0, 100.0], [np.nan, 5.0]]), np.array([200.0, 900.0]), **kwargs
    )
    np.testing.assert_array_equal(nan, only_on)


def test_letterbox_transform_puts_the_fixation_where_the_image_pixel_goes():
    image = np.zeros((300, 200), dtype=np.float32)
    _, transform = letterbox(image, (128, 128))
    assert transform.offset_x > 0  # pillarboxed: padding on the left and right
    x, y = 73.2, 140.9
    m = fixation_density(
        np.array([[x, y]]),
        np.array([300.0]),
        image_size=(300, 200),
        transform=transform,
        sigma_px=9.0,
    )
    # ResizeTransform.points works in pixel-index coordinates (centres at integers).
    px, py = transform.points(np.array([x - 0.5]), np.array([y - 0.5]))
    mx, my, vx, _ = _moments(m)
    assert mx == pytest.approx(px[0] + 0.5, abs=1e-3)
    assert my == pytest.approx(py[0] + 0.5, abs=1e-3)
    assert vx == pytest.approx((9.0 * transform.scale) ** 2 + 1 / 12, rel=5e-3)
    left = int(transform.offset_x)
    assert m[:, :left].sum() == 0 and m[:, 128 - left :].sum() == 0


def test_direct_density_agrees_with_a_full_resolution_blur():
    rng = np.random.default_rng(0)
    height, width, n, sigma = 600, 500, 25, 12.0
    xy = np.column_stack([rng.uniform(0, width, n), rng.uniform(0, height, n)])
    durations = rng.uniform(100, 600, n)
    raster = np.zeros((height, width))
    np.add.at(raster, (xy[:, 1].astype(int), xy[:, 0].astype(int)), durations)
    # mode="constant": the Gaussian ends at the image border, as the density's does.
    blurred = ndimage.gaussian_filter(raster, sigma, mode="constant", truncate=6.0)

    _, transform = letterbox(np.zeros((height, width)), (128, 128))
    direct = fixation_density(
        xy, durations, image_size=(height, width), transform=transform, sigma_px=sigma
    )
    brute = transform.apply(blurred)
    # Documented tolerance: the raster snaps fixations to whole pixels and the letterbox
    # resampler (bilinear with antialias) widens each pixel's footprint beyond the box the
    # direct path integrates over; both are small against sigma.
    assert _corr(direct, brute) > 0.99

    # Where the footprint is exactly a 5 x 5 box of whole pixels, the two agree closely.
    xy_c = np.floor(xy) + 0.5
    direct_box = fixation_density(
        xy_c, durations, image_size=(640, 500), target_size=(128, 100), sigma_px=sigma
    )
    raster_box = np.zeros((640, 500))
    np.add.at(raster_box, (xy_c[:, 1].astype(int), xy_c[:, 0].astype(int)), durations)
    box = ndimage.gaussian_filter(raster_box, sigma, mode="constant", truncate=8.0)
    box = box.reshape(128, 5, 100, 5).sum(axis=(1, 3))
    box /= box.sum()
    assert _corr(direct_box, box) > 0.9999
    assert np.abs(direct_box - box).max() < 2e-3 * box.max()


def test_pad_and_stride_transform_samples_the_full_resolution_density():
    rng = np.random.default_rng(1)
    height, width = 380, 300
    xy = np.column_stack([rng.uniform(0, width, 12), rng.uniform(0, height, 12)])
    durations = rng.uniform(100, 400, 12)
    full = fixation_density(
        xy, durations, image_size=(height, width), target_size=(height, width), sigma_px=20.0
    )
    sampled, transform = pad_and_stride(full, padded=(400, 320), stride=5)
    direct = fixation_density(
        xy, durations, image_size=(height, width), transform=transform, sigma_px=20.0
    )
    np.testing.assert_allclose(direct, sampled / sampled.sum(), rtol=1e-4, atol=1e-9)


def test_sigma_from_one_degree_of_visual_angle():
    geometry = DisplayGeometry(screen_px=(1920, 1080), screen_mm=(531.0, 299.0), distance_mm=600)
    rect = ImageRect.fit((1920, 1080), (2500, 3000))  # ImageRect takes (width, height)
    sigma = sigma_px_for_degrees(geometry, rect, (3000, 2500))
    screen_px_per_deg = 600 * np.tan(np.radians(1.0)) * 0.5 * (1920 / 531 + 1080 / 299)
    assert sigma == pytest.approx(screen_px_per_deg * 3000 / 1080, rel=1e-6)
    assert 100 < sigma < 110  # a 3000-px-tall image on a 1080-px screen at 60 cm
    assert sigma_px_for_degrees(geometry, rect, (3000, 2500), degrees=2.0) == pytest.approx(
        2 * sigma
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(durations_ms=np.array([-1.0])), "non-negative"),
        (dict(durations_ms=np.array([1.0, 2.0])), "durations_ms"),
        (dict(sigma_px=0.0), "sigma_px"),
        (dict(sigma_px=np.ones(3)), "sigma_px has shape"),
        (dict(fixations_xy=np.array([[-50.0, 10.0]])), "no fixation leaves mass"),
        (dict(target_size=None), "target_size or transform"),
    ],
)
def test_fixation_density_refuses_bad_input(kwargs, message):
    args = dict(
        fixations_xy=np.array([[10.0, 10.0]]),
        durations_ms=np.array([100.0]),
        image_size=(50, 40),
        target_size=(25, 20),
        sigma_px=3.0,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        fixation_density(**args)


def test_pool_maps_is_the_mean_of_normalised_reader_maps():
    a = np.zeros((4, 4))
    a[0, 0] = 10.0
    b = np.zeros((4, 4))
    b[3, 3] = 1.0
    pooled = pool_maps([a, b])
    assert pooled.dtype == np.float32 and pooled.sum() == pytest.approx(1.0)
    assert pooled[0, 0] == pytest.approx(0.5) and pooled[3, 3] == pytest.approx(0.5)
    weighted = pool_maps(np.stack([a, b]), weights=[3.0, 1.0])
    assert weighted[0, 0] == pytest.approx(0.75) and weighted[3, 3] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="positive"):
        pool_maps([a, np.zeros((4, 4))])
    with pytest.raises(ValueError, match="weights"):
        pool_maps([a, b], weights=[1.0])
    with pytest.raises(ValueError, match="at least one"):
        pool_maps([])


# --------------------------------------------------------------------------------------------
# Original mode against OpenCV
# --------------------------------------------------------------------------------------------


def _opencv_original(xy, image_size, *, ksize=501, padded=(3200, 2560), stride=5, int8=False):
    """The original pipeline written with OpenCV (the oracle), independently of ml/."""
    height, width = image_size
    counts = np.zeros((height, width), dtype=np.int64)
    cols, rows = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    ok = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    np.add.at(counts, (rows[ok], cols[ok]), 1)
    if int8:
        counts = counts.astype(np.int8)
    heat = cv2.GaussianBlur(
        counts.astype(np.float32), (ksize, ksize), 0, borderType=cv2.BORDER_REFLECT_101
    )
    heat = heat / heat.max()
    canvas = np.zeros(padded, dtype=np.float32)
    top, left = (padded[0] - height) // 2, (padded[1] - width) // 2
    src = heat[max(0, -top) : max(0, -top) + padded[0], max(0, -left) : max(0, -left) + padded[1]]
    canvas[max(0, top) : max(0, top) + src.shape[0], max(0, left) : max(0, left) + src.shape[1]] = (
        src
    )
    small = canvas[::stride, ::stride]
    return (small - small.min()) / (small.max() - small.min())


def _samples(rng, n, image_size, clusters=6):
    height, width = image_size
    centres = rng.uniform([0.2 * width, 0.2 * height], [0.8 * width, 0.8 * height], (clusters, 2))
    xy = centres[rng.integers(0, clusters, n)] + rng.normal(0, 0.05 * width, (n, 2))
    return np.vstack([xy, [[-3.0, 10.0], [width + 2.0, 5.0]]])  # two off-image samples


@pytest.mark.parametrize(
    ("image_size", "ksize", "padded", "stride"),
    [
        ((900, 700), 501, (1000, 800), 5),  # the real kernel: reflect-101 borders everywhere
        ((700, 900), 101, (800, 640), 5),  # wider than the canvas: cropped centred
        ((305, 251), 31, (320, 256), 4),
    ],
)
def test_original_mode_matches_opencv(image_size, ksize, padded, stride):
    rng = np.random.default_rng(2)
    xy = _samples(rng, 1500, image_size)
    ours = original_mtunet_target(xy, image_size, ksize=ksize, padded=padded, stride=stride)
    oracle = _opencv_original(xy, image_size, ksize=ksize, padded=padded, stride=stride)
    assert ours.shape == oracle.shape == (padded[0] // stride, padded[1] // stride)
    assert ours.dtype == np.float32
    assert _corr(ours, oracle) >= 0.999
    assert np.abs(ours - oracle).max() < 1e-5


def test_original_mode_fixes_the_int8_overflow_and_can_reproduce_it():
    rng = np.random.default_rng(3)
    image_size, kw = (600, 500), dict(ksize=201, padded=(640, 512), stride=4)
    # A long dwell: 200 samples on one pixel wrap to -56 in int8.
    xy = np.vstack([_samples(rng, 800, image_size), np.tile([[250.5, 300.5]], (200, 1))])
    fixed = original_mtunet_target(xy, image_size, **kw)
    wrapped = original_mtunet_target(xy, image_size, int8_overflow=True, **kw)
    np.testing.assert_allclose(
        wrapped, _opencv_original(xy, image_size, int8=True, **kw), atol=1e-5
    )
    np.testing.assert_allclose(fixed, _opencv_original(xy, image_size, **kw), atol=1e-5)
    # The dwell is the brightest spot once fixed; the defect turns it into a dark hole.
    r, c = (300 + (640 - 600) // 2) // 4, (250 + (512 - 500) // 2) // 4
    assert fixed[r, c] > 0.9
    assert wrapped[r, c] < fixed[r, c] - 0.5


def test_original_mode_without_samples_on_the_image_is_zero():
    out = original_mtunet_target(np.array([[-5.0, 3.0]]), (100, 80), ksize=11, padded=(120, 100))
    assert out.shape == (24, 20) and not out.any()


@pytest.mark.parametrize(
    ("ksize", "sigma"), [(1, 0), (3, 0), (7, 0), (9, 0), (31, 0), (501, 0), (15, 2.5)]
)
def test_opencv_kernel(ksize, sigma):
    ours = opencv_gaussian_kernel(ksize, sigma)
    np.testing.assert_allclose(
        ours, cv2.getGaussianKernel(ksize, sigma, ktype=cv2.CV_64F).ravel(), atol=1e-15
    )
    if ksize == 501:
        assert np.argmax(ours) == 250
        # The 75.5-px sigma: ln(k(0) / k(100)) = 100^2 / (2 sigma^2).
        sigma_found = 100 / np.sqrt(2 * np.log(ours[250] / ours[350]))
        assert sigma_found == pytest.approx(75.5, rel=1e-9)


def test_full_resolution_blur_matches_opencv_gaussian_blur():
    rng = np.random.default_rng(4)
    image = rng.random((40, 30)).astype(np.float32)
    for ksize in (5, 31, 101):  # 101 is wider than the image: repeated reflections
        expected = cv2.GaussianBlur(image, (ksize, ksize), 0, borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(gaussian_blur_reflect101(image, ksize), expected, atol=1e-6)


@pytest.mark.slow
def test_original_mode_matches_opencv_at_full_size():
    rng = np.random.default_rng(5)
    image_size = (3056, 2544)  # a MIMIC-CXR portrait
    xy = _samples(rng, 2000, image_size)
    ours = original_mtunet_target(xy, image_size)
    oracle = _opencv_original(xy, image_size)
    assert ours.shape == (640, 512)
    assert _corr(ours, oracle) >= 0.999
    assert np.abs(ours - oracle).max() < 1e-5


# --------------------------------------------------------------------------------------------
# Cache keys
# --------------------------------------------------------------------------------------------


def _key_inputs():
    _, transform = letterbox(np.zeros((300, 200)), (128, 128))
    return dict(
        fixations_xy=np.array([[10.0, 20.0], [30.5, 40.25]]),
        durations_ms=np.array([120.0, 300.0]),
        image_size=(300, 200),
        sigma_px=9.5,
        transform=transform,
        shown_rect=None,
        include_off_image=False,
    )


def test_cache_key_is_stable():
    key = target_cache_key("fixation_density", **_key_inputs())
    assert len(key) == 64 and int(key, 16) >= 0
    assert target_cache_key("fixation_density", **_key_inputs()) == key
    # Storage does not matter, values do: float32 / int / list spellings of the same numbers.
    same = _key_inputs()
    same["fixations_xy"] = same["fixations_xy"].astype(np.float32)
    same["durations_ms"] = np.array([120, 300], dtype=np.int64).astype(np.float64)
    same["image_size"] = [300, 200]
    assert target_cache_key("fixation_density", **dict(reversed(same.items()))) == key
    # The encoding is fixed across processes and versions of Python: a golden value. It changes
    # only with SALIENCY_CODE_VERSION or an intended change of the encoding.
    assert target_cache_key(
        "original_mtunet", sample_xy=np.array([[1.0, 2.0]]), image_size=(3, 4), int8_overflow=False
    ) == ("d59c21406f20b5f3842d0348ee50992847889c754388568963a033b7c67a4461")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["fixations_xy"].__setitem__((1, 0), 30.5 + 1e-9),
        lambda d: d["durations_ms"].__setitem__(0, 121.0),
        lambda d: d.__setitem__("sigma_px", 9.25),
        lambda d: d.__setitem__("image_size", (200, 300)),
        lambda d: d.__setitem__("include_off_image", True),
        lambda d: d.__setitem__("shown_rect", np.array([0.0, 0.0, 200.0, 300.0])),
        lambda d: d.__setitem__("transform", letterbox(np.zeros((300, 200)), (64, 64))[1]),
        lambda d: d.__setitem__("fixations_xy", d["fixations_xy"][::-1].copy()),
    ],
)
def test_cache_key_changes_with_any_input(change):
    base = target_cache_key("fixation_density", **_key_inputs())
    changed = _key_inputs()
    change(changed)
    assert target_cache_key("fixation_density", **changed) != base


def test_cache_key_changes_with_mode_and_code_version(monkeypatch):
    base = target_cache_key("fixation_density", **_key_inputs())
    assert target_cache_key("pooled", **_key_inputs()) != base
    monkeypatch.setattr(sm, "SALIENCY_CODE_VERSION", "ml.saliency_maps/next")
    assert target_cache_key("fixation_density", **_key_inputs()) != base
    with pytest.raises(TypeError, match="cannot hash"):
        target_cache_key("fixation_density", callback=object())
