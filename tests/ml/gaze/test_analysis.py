"""``ml.gaze.analysis``: fixations chosen or detected, detected positions in the samples' units,
calibration-screen errors, and a recording analysed into per-image readings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.gaze import (
    DisplayGeometry,
    Fixations,
    GazeFormatError,
    GazeRecording,
    IDTConfig,
    IVTConfig,
    Samples,
    Stimulus,
)
from ml.gaze.analysis import (
    ReadingSetup,
    analyse_recording,
    calibration_screens,
    detection_config,
    in_sample_units,
    recording_fixations,
)
from ml.gaze.screen import Placement

SCREEN = (1920, 1080)


def samples(t, x, y, *, valid=None, stimulus=None, space="screen_px", extra=None) -> Samples:
    n = len(t)
    return Samples(
        np.asarray(t, float), np.asarray(x, float), np.asarray(y, float),
        np.ones(n, bool) if valid is None else np.asarray(valid, bool), np.full(n, np.nan),
        np.zeros(n, np.int32) if stimulus is None else np.asarray(stimulus, np.int32),
        np.arange(1, n + 1), space, extra=extra or {},
    )  # fmt: skip


def fixations(start, duration, x, y, stimulus=None, space="screen_px", extra=None) -> Fixations:
    n = len(start)
    stim = np.zeros(n, np.int32) if stimulus is None else np.asarray(stimulus, np.int32)
    return Fixations(
        np.asarray(start, float), np.asarray(duration, float), np.asarray(x, float),
        np.asarray(y, float), stim, space, "vendor", extra=extra or {},
    )  # fmt: skip


def two_fixations_at_1000_hz(space="screen_px", scale=(1.0, 1.0)) -> Samples:
    """300 ms at (500, 500), then 300 ms at (1500, 500) screen px (a 1000 px jump in 1 ms)."""
    t = np.arange(600.0)
    x = np.where(t < 300, 500.0, 1500.0) / scale[0]
    y = np.full(600, 500.0) / scale[1]
    return samples(t, x, y, space=space)


def test_detection_config_defaults_and_overrides() -> None:
    assert detection_config("auto") == IVTConfig()
    assert detection_config("ivt", velocity_deg_s=50.0).velocity_threshold == 50.0
    idt = detection_config("idt", dispersion_deg=1.5, min_duration_ms=80.0)
    assert isinstance(idt, IDTConfig)
    assert (idt.dispersion_threshold, idt.min_duration_ms) == (1.5, 80.0)
    # None and 0 both mean "the default", as a session's blank field does.
    assert detection_config("idt", dispersion_deg=None).dispersion_threshold == (
        IDTConfig().dispersion_threshold
    )


def test_in_sample_units_is_the_mean_of_valid_samples() -> None:
    # Samples every 10 ms; a fixation from 20 ms lasting 30 ms covers the samples at 20, 30, 40.
    t = np.arange(0.0, 100.0, 10.0)
    x = t**2 / 100  # 0, 1, 4, 9, 16, ...
    valid = np.ones(10, bool)
    valid[3] = False  # the sample at 30 ms (x = 9) is left out
    valid[7] = False  # the second fixation's only sample
    s = samples(t, x, 2 * x, valid=valid, space="surface_norm")
    fx = fixations([20.0, 70.0, 90.0], [30.0, 10.0, 5.0], [0.0] * 3, [0.0] * 3)
    got = in_sample_units(fx, s)
    assert got.x[0] == pytest.approx((4 + 16) / 2) and got.y[0] == pytest.approx(20.0)
    assert math.isnan(got.x[1]) and math.isnan(got.y[1])
    assert got.x[2] == pytest.approx(81.0)
    assert (got.space, got.source) == ("surface_norm", "detected")
    assert got.start_ms is fx.start_ms


def test_vendor_fixations_are_used_unless_redetection_is_asked() -> None:
    vendor = fixations([0.0], [200.0], [500.0], [500.0])
    rec = GazeRecording("test", "x.csv", samples=two_fixations_at_1000_hz(), fixations=vendor)
    geometry = DisplayGeometry(SCREEN)
    kw = {"geometry": geometry, "screen_px": SCREEN, "image_sizes": {}}
    warnings: list[str] = []
    assert recording_fixations(rec, ReadingSetup(SCREEN), warnings=warnings, **kw) is vendor
    assert warnings == []
    redetected = recording_fixations(
        rec, ReadingSetup(SCREEN, detection="ivt"), warnings=warnings, **kw
    )
    assert redetected.source == "detected" and len(redetected) == 2
    # Re-detection without samples: the vendor's, said so.
    only = GazeRecording("test", "x.csv", fixations=vendor)
    warnings = []
    setup = ReadingSetup(SCREEN, detection="idt")
    assert recording_fixations(only, setup, warnings=warnings, **kw) is vendor
    assert warnings == ["re-detection asked for, but the export has no samples: vendor used"]
    with pytest.raises(GazeFormatError, match="neither fixations nor enough samples"):
        recording_fixations(GazeRecording("test", "x.csv"), ReadingSetup(SCREEN), warnings=[], **kw)


@pytest.mark.parametrize("space", ["screen_px", "screen_norm"])
def test_detection_without_geometry_assumes_41_px_per_degree(space) -> None:
    scale = SCREEN if space == "screen_norm" else (1.0, 1.0)
    rec = GazeRecording("test", "x.csv", samples=two_fixations_at_1000_hz(space, scale))
    warnings: list[str] = []
    fx = recording_fixations(
        rec, ReadingSetup(SCREEN), geometry=DisplayGeometry(SCREEN), screen_px=SCREEN,
        image_sizes={}, warnings=warnings,
    )  # fmt: skip
    assert warnings == [
        "no screen size in mm or viewing distance: detection assumed 41 px per degree"
    ]
    # Two fixations, their positions back in the samples' own units.
    assert len(fx) == 2 and fx.space == space
    np.testing.assert_allclose(fx.x, np.array([500.0, 1500.0]) / scale[0])
    np.testing.assert_allclose(fx.y, np.array([500.0, 500.0]) / scale[1])


def test_detection_uses_the_exports_own_pixels_per_degree() -> None:
    s = two_fixations_at_1000_hz("image_px")
    s.extra["angular_resolution_x_pixels_per_degree"] = np.full(600, 40.0)
    s.extra["angular_resolution_y_pixels_per_degree"] = np.full(600, 40.0)
    warnings: list[str] = []
    fx = recording_fixations(
        GazeRecording("reflacx", "x.csv", samples=s), ReadingSetup(SCREEN),
        geometry=DisplayGeometry(SCREEN), screen_px=SCREEN, image_sizes={}, warnings=warnings,
    )  # fmt: skip
    assert warnings == [] and len(fx) == 2 and fx.space == "image_px"


def test_calibration_screen_error_in_pixels_and_degrees() -> None:
    # The screen centre is ((1920 - 1) / 2, (1080 - 1) / 2) = (959.5, 539.5); the gaze's median
    # is 10 px right of it. 1920 px over 480 mm is 4 px/mm: at 600 mm the eye is 2400 px away,
    # so 10 px are atan(10 / 2400) = 0.239 degrees.
    n = 5
    calib = samples(range(n), [969.5] * n, [539.5] * n)
    stim = np.r_[np.zeros(n, np.int32), np.ones(2, np.int32)]
    s = samples(range(n + 2), [*calib.x, 969.5, 969.5], [*calib.y, 539.5, 539.5], stimulus=stim)
    stimuli = [
        Stimulus("calibration", "calibration", 0.0, 5.0, "calibration"),
        Stimulus("short", "short", 5.0, 7.0, "calibration"),  # 2 samples: too few
    ]
    rec = GazeRecording("egd_cxr", "x.csv", samples=s, stimuli=stimuli)
    geometry = DisplayGeometry(SCREEN, (480.0, 270.0), 600.0)
    (row,) = calibration_screens(rec, geometry, SCREEN)
    assert row == {
        "name": "calibration",
        "error_px": 10.0,
        "error_deg": round(math.degrees(math.atan(10 / 2400)), 3),
    }
    assert calibration_screens(rec, DisplayGeometry(SCREEN), SCREEN) == [
        {"name": "calibration", "error_px": 10.0}
    ]
    # Screen fractions are screen pixels first.
    rec.samples = samples(range(n), [969.5 / 1920] * n, [0.5] * n, space="screen_norm")
    (row,) = calibration_screens(rec, DisplayGeometry(SCREEN), SCREEN)
    assert row["error_px"] == pytest.approx(10.0, abs=0.01)


def test_a_recording_analysed_into_readings_of_the_matched_images() -> None:
    # Image "img1" (2000 x 2500) fitted on the 1920 x 1080 screen: (528, 0, 864, 1080), so
    # 2500 / 1080 image px per screen px. Two fixations on the image, one on a stimulus that
    # names no image of the lab.
    stimuli = [
        Stimulus("images/img1.png", "img1", 0.0, 1000.0, "IMGLOAD"),
        Stimulus("unknown.png", "unknown", 1000.0, 2000.0, "IMGLOAD"),
    ]
    fx = fixations(
        [100.0, 400.0, 1200.0], [200.0, 300.0, 250.0], [960.0, 600.0, 10.0], [540.0, 100.0, 10.0],
        stimulus=[0, 0, 1], extra={"ppd": np.array([30.0, 31.0, 32.0])},
    )  # fmt: skip
    rec = GazeRecording("eyelink_asc", "x.asc", fixations=fx, stimuli=stimuli)
    rec.screen_size_px = (1920, 1080)
    seen: list[int] = []
    out = analyse_recording(
        rec, ReadingSetup(SCREEN, placement=Placement("fit")), images={"img1": (2000, 2500)},
        extra_columns={"px_per_deg_x": "ppd", "absent": "nope"}, progress=seen.append,
    )  # fmt: skip
    (r,) = out.readings
    assert r.key == "img1" and r.stimulus_name == "images/img1.png"
    np.testing.assert_allclose(r.x, [(960 - 528) * 2500 / 1080, (600 - 528) * 2500 / 1080])
    np.testing.assert_allclose(r.y, [540 * 2500 / 1080, 100 * 2500 / 1080])
    assert r.on_image.tolist() == [True, True]
    assert (r.start_ms, r.end_ms) == (0.0, 1000.0)
    np.testing.assert_array_equal(r.duration, [200.0, 300.0])
    assert list(r.extra) == ["px_per_deg_x"] and r.extra["px_per_deg_x"].tolist() == [30.0, 31.0]
    assert r.quality["image_rect"] == [528.0, 0.0, 864.0, 1080.0]
    assert r.quality["fixation_count"] == 2 and r.quality["mean_fixation_ms"] == 250.0
    assert out.unmatched == ["unknown.png"]
    assert out.quality["readings"] == 1 and out.quality["stimuli"] == 2
    assert seen[0] == 45 and seen[-1] == 80
    assert out.warnings == []


def test_the_exports_screen_wins_and_is_reported() -> None:
    fx = fixations([0.0], [100.0], [640.0], [512.0])
    rec = GazeRecording(
        "x", "x.asc", fixations=fx, stimuli=[Stimulus("a", "a", 0.0, 100.0, "t")],
        screen_size_px=(1280, 1024),
    )  # fmt: skip
    out = analyse_recording(rec, ReadingSetup(SCREEN), images={"a": (1280, 1024)})
    assert out.warnings == [
        "the export states a 1280x1024 screen; the session says 1920x1080: the export's was used"
    ]
    # Fitted on the export's 1280 x 1024 screen, the image fills it: the centre maps to itself.
    assert (out.readings[0].x[0], out.readings[0].y[0]) == (640.0, 512.0)


def test_an_export_without_stimuli_needs_the_image_key() -> None:
    def rec() -> GazeRecording:
        fx = fixations([0.0], [100.0], [1.0], [2.0], space="image_px")
        return GazeRecording("generic_csv", "x.csv", fixations=fx)

    with pytest.raises(GazeFormatError, match="mine.csv: the export names no image"):
        analyse_recording(rec(), ReadingSetup(SCREEN), images={"k": (10, 10)}, name="mine.csv")
    out = analyse_recording(rec(), ReadingSetup(SCREEN), images={"k": (10, 10)}, image_key="k")
    assert [(r.key, r.x.tolist(), r.y.tolist()) for r in out.readings] == [("k", [1.0], [2.0])]


def test_setup_is_checked() -> None:
    with pytest.raises(ValueError, match="detection must be one of"):
        ReadingSetup(SCREEN, detection="fast")
    setup = ReadingSetup(SCREEN, screen_mm=(527.0, 296.0), distance_mm=650.0)
    assert setup.geometry() == DisplayGeometry(SCREEN, (527.0, 296.0), 650.0)
    assert setup.geometry((1280, 1024)).screen_px == (1280, 1024)
