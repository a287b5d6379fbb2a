"""``ml.gaze.screen``: where an image was drawn, screen positions to image pixels, image fractions
placed on the screen, and pixels per degree; every expected value worked out by hand here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.gaze import DisplayGeometry, ImageRect, Samples, Stimulus
from ml.gaze.screen import (
    FALLBACK_PX_PER_DEG,
    Placement,
    degree_in_image_px,
    fallback_px_per_deg,
    image_fractions_on_screen,
    image_px_per_screen_px,
    image_rect,
    to_image,
)
from ml.saliency_maps import sigma_px_for_degrees

SCREEN = (1920, 1080)
PORTRAIT = (2000, 2500)  # a chest X-ray, (width, height)


def rect_of(r: ImageRect) -> tuple[float, float, float, float]:
    return (r.left, r.top, r.width, r.height)


def stimulus(placement=None) -> Stimulus:
    return Stimulus("img", "img", 0.0, 100.0, "test", placement)


def test_a_portrait_image_is_pillarboxed_on_a_landscape_screen() -> None:
    # Height limits: 1080 / 2500 = 0.432 screen px per image px; 2000 * 0.432 = 864 px wide,
    # centred: (1920 - 864) / 2 = 528 px either side.
    got = image_rect(Placement("fit"), stimulus=None, image_size=PORTRAIT, screen_px=SCREEN)
    assert rect_of(got) == pytest.approx((528.0, 0.0, 864.0, 1080.0))


def test_a_wide_image_is_letterboxed() -> None:
    # Width limits: 1920 / 3000 = 0.64; 1000 * 0.64 = 640 px tall, (1080 - 640) / 2 = 220 above.
    got = image_rect(Placement("fit"), stimulus=None, image_size=(3000, 1000), screen_px=SCREEN)
    assert rect_of(got) == pytest.approx((0.0, 220.0, 1920.0, 640.0))


def test_fit_padding_is_kept_free_on_every_side() -> None:
    # 40 px padding: the image fits 1840 x 1000, so 1000 / 2500 = 0.4 -> 800 x 1000, centred in
    # the inner area: 40 + (1840 - 800) / 2 = 560 from the left, 40 from the top.
    got = image_rect(
        Placement("fit", padding_px=40), stimulus=None, image_size=PORTRAIT, screen_px=SCREEN
    )
    assert rect_of(got) == pytest.approx((560.0, 40.0, 800.0, 1000.0))


def test_auto_uses_the_exports_own_placement_and_fit_ignores_it() -> None:
    # EyeLink IMGLOAD TOP_LEFT 100 50 draws the image at its native size.
    drawn = stimulus({"anchor": "top_left", "x": 100, "y": 50})
    auto = image_rect(Placement("auto"), stimulus=drawn, image_size=(800, 600), screen_px=SCREEN)
    assert rect_of(auto) == (100.0, 50.0, 800.0, 600.0)
    fit = image_rect(Placement("fit"), stimulus=drawn, image_size=(800, 600), screen_px=SCREEN)
    # 1080 / 600 = 1.8 -> 1440 x 1080, (1920 - 1440) / 2 = 240.
    assert rect_of(fit) == pytest.approx((240.0, 0.0, 1440.0, 1080.0))
    # A placement without position (only an anchor the session cannot use) is fitted too.
    vague = stimulus({"anchor": "top_left"})
    assert rect_of(
        image_rect(Placement("auto"), stimulus=vague, image_size=(800, 600), screen_px=SCREEN)
    ) == pytest.approx(rect_of(fit))


def test_auto_with_egd_cxr_padding() -> None:
    # Pads in original-image pixels make the padded image 16:9: 2500 * 16 / 9 = 4444.4 px wide,
    # 1222.2 px each side; scaled by 1920 / 4444.4 = 0.432 the image lands where fitting puts it.
    pad = (2500 * 16 / 9 - 2000) / 2
    egd = stimulus({"anchor": "padding", "top": 0, "bottom": 0, "left": pad, "right": pad})
    got = image_rect(Placement("auto"), stimulus=egd, image_size=PORTRAIT, screen_px=SCREEN)
    assert rect_of(got) == pytest.approx((528.0, 0.0, 864.0, 1080.0))


def test_rect_placement_is_the_sessions_rectangle_whatever_the_export_says() -> None:
    fixed = ImageRect(10.0, 20.0, 300.0, 400.0)
    drawn = stimulus({"anchor": "fill"})
    got = image_rect(
        Placement("rect", rect=fixed), stimulus=drawn, image_size=PORTRAIT, screen_px=SCREEN
    )
    assert got == fixed


def test_placement_is_checked() -> None:
    with pytest.raises(ValueError, match="needs its rectangle"):
        Placement("rect")
    with pytest.raises(ValueError, match="placement mode"):
        Placement("stretch")


def test_screen_points_to_image_pixels() -> None:
    # The image in (560, 40, 800, 1000): 2000 / 800 = 2.5 image px per screen px on both axes.
    rect = ImageRect(560.0, 40.0, 800.0, 1000.0)
    x = np.array([960.0, 560.0, 1360.0, 100.0])
    y = np.array([540.0, 40.0, 1040.0, 540.0])
    pts = to_image(x, y, space="screen_px", rect=rect, image_size=PORTRAIT, screen_px=SCREEN)
    np.testing.assert_allclose(pts.x, [1000.0, 0.0, 2000.0, (100 - 560) * 2.5])
    np.testing.assert_allclose(pts.y, [1250.0, 0.0, 2500.0, 1250.0])
    # Pixel i covers [i, i + 1): the far corner is just off the image, and so is x < 0.
    assert pts.on_image.tolist() == [True, True, False, False]
    # Fractions of the screen are screen pixels first: (0.5, 0.5) is (960, 540).
    norm = to_image(
        np.array([0.5]), np.array([0.5]), space="screen_norm", rect=rect, image_size=PORTRAIT,
        screen_px=SCREEN,
    )  # fmt: skip
    assert (norm.x[0], norm.y[0]) == pytest.approx((1000.0, 1250.0))


def test_image_spaces_ignore_the_screen_rectangle() -> None:
    rect = ImageRect(560.0, 40.0, 800.0, 1000.0)
    frac = to_image(
        np.array([0.25]), np.array([0.5]), space="media_norm", rect=rect, image_size=PORTRAIT,
        screen_px=SCREEN,
    )  # fmt: skip
    assert (frac.x[0], frac.y[0]) == (500.0, 1250.0)
    px = to_image(
        np.array([7.0]), np.array([9.0]), space="image_px", rect=rect, image_size=PORTRAIT,
        screen_px=SCREEN,
    )  # fmt: skip
    assert (px.x[0], px.y[0]) == (7.0, 9.0)


def test_image_fractions_are_placed_through_each_stimulus_rectangle() -> None:
    stimuli = [stimulus(), Stimulus("other", "other", 100.0, 200.0, "test")]
    # Stimulus 0 is a matched 2000 x 2500 image: (528, 0, 864, 1080). Stimulus 1 is unmatched:
    # a 1080 x 1080 square fitted, (420, 0, 1080, 1080). Samples of no stimulus: a 1080 square
    # at the origin.
    x = np.array([0.5, 0.0, 0.5, 0.0, 0.5])
    y = np.array([0.5, 1.0, 0.5, 0.0, 0.5])
    stim = np.array([0, 0, 1, 1, -1], np.int32)
    s = Samples(
        np.arange(5.0), x, y, np.ones(5, bool), np.full(5, np.nan), stim, np.arange(5),
        "surface_norm",
    )  # fmt: skip
    got = image_fractions_on_screen(
        s, stimuli, placement=Placement("fit"), screen_px=SCREEN, image_sizes={0: PORTRAIT}
    )
    assert got.space == "screen_px"
    np.testing.assert_allclose(got.x, [528 + 432, 528, 420 + 540, 420, 540])
    np.testing.assert_allclose(got.y, [540, 1080, 540, 0, 540])
    assert got.stimulus is stim and got.time_ms is s.time_ms


def test_fallback_pixels_per_degree_per_space() -> None:
    assert fallback_px_per_deg("screen_px", SCREEN) == (41.0, 41.0)
    assert FALLBACK_PX_PER_DEG == 41.0
    # In screen fractions, 41 px are 41 / 1920 of the width and 41 / 1080 of the height.
    assert fallback_px_per_deg("screen_norm", SCREEN) == pytest.approx((41 / 1920, 41 / 1080))


def test_one_degree_in_image_pixels_from_the_geometry() -> None:
    # 1000 px over 500 mm is 2 px per mm; at 500 mm the eye is 1000 px away, so one degree at
    # the centre spans 1000 * tan(1 deg) = 17.455 screen px. The image is drawn at half its
    # size (1000 image px in 500 screen px): 34.91 image px.
    geometry = DisplayGeometry((1000, 1000), (500.0, 500.0), 500.0)
    rect = ImageRect(250.0, 250.0, 500.0, 500.0)
    assert image_px_per_screen_px(rect, (1000, 1000)) == 2.0
    px, measured = degree_in_image_px(geometry, rect, (1000, 1000))
    assert measured and px == pytest.approx(2 * 1000 * math.tan(math.radians(1.0)))
    # A typical reading room: 527 x 296 mm at 650 mm; the axes' distances in px are averaged.
    geometry = DisplayGeometry(SCREEN, (527.0, 296.0), 650.0)
    rect = ImageRect(528.0, 0.0, 864.0, 1080.0)
    d = (650 * 1920 / 527 + 650 * 1080 / 296) / 2
    scale = (2000 / 864 + 2500 / 1080) / 2
    px, measured = degree_in_image_px(geometry, rect, PORTRAIT)
    assert measured and px == pytest.approx(d * math.tan(math.radians(1.0)) * scale)
    # The same number the saliency maps compute (which take (height, width)).
    assert px == sigma_px_for_degrees(geometry, rect, PORTRAIT[::-1])


def test_one_degree_in_image_pixels_assumed_without_geometry() -> None:
    rect = ImageRect(250.0, 250.0, 500.0, 500.0)
    px, measured = degree_in_image_px(DisplayGeometry((1000, 1000)), rect, (1000, 1000))
    assert not measured and px == 41.0 * 2
