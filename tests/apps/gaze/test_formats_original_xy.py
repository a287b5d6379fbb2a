"""EGD-CXR's X_ORIGINAL/Y_ORIGINAL cross-checked on upload: the recording's and each reading's
quality report give the largest and the median disagreement with the mapped positions (image px),
and the recording warns when they disagree by more than a few pixels."""

from __future__ import annotations

import csv

import pytest

from apps.gaze import services
from apps.gaze.models import Reading, Recording
from ml.synthetic.writers import write_egd_cxr
from tests.apps.gaze.conftest import simulated


def parse(personas, session, *paths) -> Recording:
    [rec] = services.recording_upload(
        session=session, uploaded_by=personas.researcher_a,
        uploads=[services.tmp_upload(p) for p in paths], enqueue=False,
    )  # fmt: skip
    services.recording_parse(recording_id=rec.pk)
    rec.refresh_from_db()
    assert rec.status == "done", rec.errors
    return rec


@pytest.mark.parametrize("name", ["fixations", "eye_gaze"])
def test_synthetic_egd_cxr_agrees_within_a_pixel(personas, session, images, phantoms, tmp_path,
                                                 name):  # fmt: skip
    paths = write_egd_cxr(simulated(phantoms, 60), tmp_path / "egd", calibration_every=2)
    rec = parse(personas, session, paths[name], paths["master_sheet"])
    q = rec.quality
    assert 0 < q["original_xy_median_error_px"] <= q["original_xy_max_error_px"] < 1.0
    assert q["original_xy_checked"] > 20
    for reading in Reading.objects.filter(recording=rec):
        assert reading.quality["original_xy_max_error_px"] < 1.0
    assert not any("X_ORIGINAL" in w for w in rec.warnings)


def test_shifted_x_original_is_reported(personas, session, images, phantoms, tmp_path):
    paths = write_egd_cxr(simulated(phantoms, 60), tmp_path / "egd", calibration_every=2)
    with paths["fixations"].open(newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("X_ORIGINAL")
    for r in rows[1:]:
        if int(r[col]) >= 0:
            r[col] = str(int(r[col]) + 8)
    shifted = tmp_path / "fixations.csv"
    with shifted.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    rec = parse(personas, session, shifted, paths["master_sheet"])
    q = rec.quality
    assert q["original_xy_max_error_px"] == pytest.approx(8, abs=1.0)
    assert q["original_xy_median_error_px"] == pytest.approx(8, abs=1.0)
    assert any("X_ORIGINAL/Y_ORIGINAL lie up to" in w for w in rec.warnings)


def test_pads_in_screen_pixels_are_told_apart(personas, session, images, phantoms, tmp_path):
    """A file whose pads and X_ORIGINAL follow the EGD-CXR authors' code (pads in screen pixels,
    the image filling the rest of the screen): the mapping's disagreement is large, the other
    convention's is under a pixel, and the warning says which one fits."""
    paths = write_egd_cxr(simulated(phantoms, 60), tmp_path / "egd", calibration_every=2,
                          pad_convention="screen_px")  # fmt: skip
    rec = parse(personas, session, paths["fixations"], paths["master_sheet"])
    q = rec.quality
    assert q["original_xy_max_error_px"] > 20
    assert q["original_xy_screen_pads_max_error_px"] < 1.0
    [warning] = [w for w in rec.warnings if "X_ORIGINAL" in w]
    assert "pads in screen pixels" in warning
