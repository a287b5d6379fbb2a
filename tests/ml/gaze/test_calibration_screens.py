"""A tracker's own calibration screen is recognised and reported, never an unmatched image: Tobii
Pro Lab names it ``Eyetracker Calibration`` (as the real export in ../shared/formats does)."""

from __future__ import annotations

import pytest

from ml.gaze import read_recording
from ml.gaze.analysis import ReadingSetup, analyse_recording
from ml.gaze.formats._labels import is_calibration_name
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers.tobii import CALIBRATION_STIMULUS, write_tobii_pro_lab_tsv
from tests.shared_formats import FORMATS_DIR, needs

KEY = "00000000-cafe0000-00000000-00000000-00000chf"
H, W = 300, 250
SETUP = ReadingSetup(screen_px=(1920, 1080), screen_mm=(531.0, 299.0), distance_mm=650.0)
REAL_TOBII = FORMATS_DIR / "tobii_pro_lab_tsv/DEV_cemGr_IVT-normal_Data_export_first300.tsv"


@pytest.fixture(scope="module")
def tsv(tmp_path_factory):
    reader = Radiologist(name="R1", n_fixations=10)
    reading = simulate_reading(
        make_phantom("CHF", seed=1, height=H, width=W), reader, rate_hz=120, seed=0,
        image_key=KEY,
    )  # fmt: skip
    return write_tobii_pro_lab_tsv([reading], tmp_path_factory.mktemp("t") / "e.tsv",
                                   calibration=True)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "is_one"),
    [
        ("Eyetracker Calibration", True),
        ("Eye tracker Validation", True),
        ("eyetracker calibration ", True),
        ("calibration.png", False),
        ("Eyetracker Calibration image 2", False),
        (KEY, False),
    ],
)
def test_calibration_names(name, is_one) -> None:
    assert is_calibration_name(name) is is_one


def test_tobii_calibration_stimulus_is_a_calibration_screen(tsv) -> None:
    rec = read_recording(str(tsv["tsv"]))
    assert [(s.name, s.source) for s in rec.stimuli] == [
        (CALIBRATION_STIMULUS, "calibration"),
        (KEY, "Presented Stimulus name"),
    ]
    assert rec.meta["calibration_screens"] == [CALIBRATION_STIMULUS]
    out = analyse_recording(rec, SETUP, images={KEY: (W, H)})
    assert out.unmatched == []
    assert [r.key for r in out.readings] == [KEY]
    [screen] = out.quality["calibration_screens"]
    # Pro Lab's dots move over the screen and the export does not place them: reported, counted,
    # not measured against the centre.
    assert screen["name"] == CALIBRATION_STIMULUS and "error_px" not in screen
    assert screen["samples"] > 0 and screen["fixations"] == 5
    assert out.quality["dropped"]["by_reason"] == {"calibration screen": 5}
    kept = sum(len(r.duration) for r in out.readings)
    assert kept + out.quality["dropped"]["count"] == len(rec.fixations)
    assert out.quality["validation_error_deg"] is not None  # the export's own, not the screen's


@needs(FORMATS_DIR)
def test_real_tobii_export_with_only_its_calibration_takes_the_image_key() -> None:
    """The real export's only stimulus is its calibration screen: with the upload's image_key,
    the rest of its gaze is a reading of that image."""
    rec = read_recording(REAL_TOBII)
    assert [(s.name, s.source) for s in rec.stimuli] == [(CALIBRATION_STIMULUS, "calibration")]
    out = analyse_recording(rec, SETUP, images={KEY: (W, H)}, image_key=KEY)
    assert out.unmatched == [] and [r.key for r in out.readings] == [KEY]
    assert [c["name"] for c in out.quality["calibration_screens"]] == [CALIBRATION_STIMULUS]
    kept = sum(len(r.duration) for r in out.readings)
    assert kept + out.quality["dropped"]["count"] == len(rec.fixations)
