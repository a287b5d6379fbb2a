"""EGD-CXR's X_ORIGINAL/Y_ORIGINAL (original-image pixels) against what the mapping computes from
the screen positions with the pad convention (``ImageRect.from_padding``): the quality report gives
the largest and the median disagreement, and a warning above a few pixels."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ml.gaze import GazeFormatError, read_recording
from ml.gaze.analysis import ORIGINAL_XY_WARN_PX, ReadingSetup, analyse_recording
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_egd_cxr
from tests.shared_formats import FORMATS_DIR, needs

H, W = 300, 250
LABELS = ("CHF", "Pneumonia", "Normal")
SETUP = ReadingSetup(screen_px=(1920, 1080), screen_mm=(531.0, 299.0), distance_mm=650.0)


def key(i: int, label: str) -> str:
    return f"{i:08x}-cafe0000-00000000-00000000-{label.lower():0>8}"


IMAGES = {key(i, label): (W, H) for i, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def egd(tmp_path_factory) -> dict[str, Path]:
    reader = Radiologist(name="R1", n_fixations=14)
    readings = [
        simulate_reading(
            make_phantom(label, seed=i + 1, height=H, width=W), reader, rate_hz=60, seed=i,
            image_key=key(i, label),
        )
        for i, label in enumerate(LABELS)
    ]  # fmt: skip
    return write_egd_cxr(readings, tmp_path_factory.mktemp("egd"), calibration_every=2)


def analysed(path: Path, master_sheet: Path, detection: str = "auto"):
    rec = read_recording(str(path), master_sheet=str(master_sheet))
    setup = ReadingSetup(
        screen_px=SETUP.screen_px, screen_mm=SETUP.screen_mm, distance_mm=SETUP.distance_mm,
        detection=detection,
    )  # fmt: skip
    return analyse_recording(rec, setup, images=IMAGES)


@pytest.mark.parametrize(
    ("name", "detection"), [("fixations", "auto"), ("eye_gaze", "auto"), ("eye_gaze", "ivt")]
)
def test_synthetic_export_agrees_within_a_pixel(egd, name, detection) -> None:
    out = analysed(egd[name], egd["master_sheet"], detection)
    q = out.quality
    assert q["original_xy_checked"] > 20
    assert q["original_xy_max_error_px"] < 1.0
    assert q["original_xy_median_error_px"] < q["original_xy_max_error_px"]
    assert "FPOG" in q["original_xy_from"]
    for r in out.readings:
        assert r.quality["original_xy_max_error_px"] < 1.0
    assert not any("X_ORIGINAL" in w for w in out.warnings)


def _shift_x_original(src: Path, dst: Path, shift: int) -> Path:
    with src.open(newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("X_ORIGINAL")
    for r in rows[1:]:
        if int(r[col]) >= 0:
            r[col] = str(int(r[col]) + shift)
    with dst.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return dst


@pytest.mark.parametrize("shift", [5, -12])
def test_shifted_x_original_gives_the_shift(egd, tmp_path, shift) -> None:
    path = _shift_x_original(egd["fixations"], tmp_path / "fixations.csv", shift)
    out = analysed(path, egd["master_sheet"])
    q = out.quality
    # Each row's error is |shift + (rounding of X_ORIGINAL, within a pixel)|.
    assert q["original_xy_median_error_px"] == pytest.approx(abs(shift), abs=1.0)
    assert q["original_xy_max_error_px"] == pytest.approx(abs(shift), abs=1.0)
    assert abs(shift) > ORIGINAL_XY_WARN_PX
    [warning] = [w for w in out.warnings if "X_ORIGINAL" in w]
    assert f"{q['original_xy_max_error_px']:g} image px" in warning
    assert "median" in warning


def test_exports_without_the_columns_say_nothing(tmp_path) -> None:
    from ml.synthetic.writers import write_gazepoint_csv

    reader = Radiologist(name="R1", n_fixations=8)
    k = key(0, "CHF")
    reading = simulate_reading(make_phantom("CHF", seed=1, height=H, width=W), reader,
                               rate_hz=60, seed=0, image_key=k)  # fmt: skip
    paths = write_gazepoint_csv([reading], tmp_path)
    rec = read_recording(str(paths["fixations"]), screen_size_px=(1920, 1080))
    out = analyse_recording(rec, SETUP, images={k: (W, H)})
    assert "original_xy_max_error_px" not in out.quality


@needs(FORMATS_DIR)
def test_real_egd_cxr_files_hold_no_rows_to_check() -> None:
    """The real EGD-CXR files here are headers only (the dataset's rows may not be shared): each
    is read to its header and refused for want of rows, so there is no disagreement to measure
    on them; the header has both columns the check reads."""
    files = sorted((FORMATS_DIR / "egd_cxr").glob("*fixations*.csv"))
    assert files
    for path in files:
        header = path.read_text(encoding="utf-8").splitlines()
        assert header[0].split(",")[-2:] == ["X_ORIGINAL", "Y_ORIGINAL"]
        assert len([ln for ln in header if ln.strip()]) == 1
        with pytest.raises(GazeFormatError, match="no data rows"):
            read_recording(path)
