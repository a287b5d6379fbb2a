"""Pupil Player surface exports: gaze and fixations on a surface drawn around the image."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ml.gaze.formats import detect_format, read_recording
from ml.gaze.recording import GazeFormatError
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_pupil_core
from ml.synthetic.writers.pupil import EPOCH_S


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    phantom = make_phantom("CHF", seed=1, height=300, width=250)
    reading = simulate_reading(
        phantom, Radiologist(name="R1", n_fixations=12), rate_hz=200, seed=0, image_key="img"
    )
    return write_pupil_core(reading, tmp_path_factory.mktemp("pupil"), frame_jitter=1e-3)


def test_fixations_on_surface_are_merged_per_fixation(export) -> None:
    path = str(export["fixations"])
    assert detect_format(path) == "pupil_core"
    rec = read_recording(path)
    fx = rec.fixations
    assert rec.format == "pupil_core" and fx.space == "surface_norm" and fx.source == "vendor"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    ids = sorted({int(r["fixation_id"]) for r in rows})
    assert len(rows) > 2 * len(ids)  # a row per world frame, merged back into one per id
    assert fx.extra["id"].tolist() == ids
    for k, fid in enumerate(ids):
        mine = [r for r in rows if int(r["fixation_id"]) == fid]
        assert fx.start_ms[k] == pytest.approx(float(mine[0]["start_timestamp"]) * 1000)
        assert fx.duration_ms[k] == pytest.approx(float(mine[0]["duration"]))
        assert fx.x[k] == pytest.approx(np.mean([float(r["norm_pos_x"]) for r in mine]))
        # Pupil's origin is bottom-left; here it is top-left like every other format.
        assert fx.y[k] == pytest.approx(1 - np.mean([float(r["norm_pos_y"]) for r in mine]))
    truth = json.loads(export["truth"].read_text())["readings"][0]
    w, h = truth["image_width"], truth["image_height"]
    true_x = np.array([f["image_x"] for f in truth["fixations"]])
    true_y = np.array([f["image_y"] for f in truth["fixations"]])
    assert len(fx) == len(true_x)
    assert np.abs(fx.x * w - true_x).max() < 1.0 and np.abs(fx.y * h - true_y).max() < 1.0
    starts = np.array([f["start_s"] for f in truth["fixations"]])
    np.testing.assert_allclose(fx.start_ms, (EPOCH_S + starts) * 1000, atol=1e-3)


def test_gaze_on_surface_uses_confidence(export) -> None:
    rec = read_recording(str(export["gaze"]))
    s = rec.samples
    truth = json.loads(export["truth"].read_text())["readings"][0]
    assert s.space == "surface_norm" and len(s) == truth["n_samples"]
    assert int(s.valid.sum()) == truth["n_valid_samples"]
    assert rec.warnings == []


def test_world_camera_fixations_warn(tmp_path) -> None:
    path = tmp_path / "fixations.csv"
    path.write_text(
        "id,start_timestamp,duration,start_frame_index,end_frame_index,norm_pos_x,norm_pos_y,"
        "dispersion,confidence,method\n"
        "2,10.5,300.0,3,12,0.25,0.75,1.0,0.9,3d gaze\n"
        "1,10.1,200.0,1,2,0.5,0.5,1.0,0.9,3d gaze\n"
    )
    rec = read_recording(str(path))
    fx = rec.fixations
    assert fx.space == "camera_norm" and "surface tracking" in rec.warnings[0]
    # Sorted by start; y flipped.
    assert fx.start_ms.tolist() == [10100.0, 10500.0] and fx.y.tolist() == [0.5, 0.25]


def test_a_fixation_row_without_a_start_names_its_line(tmp_path) -> None:
    path = tmp_path / "fixations.csv"
    path.write_text(
        "id,start_timestamp,duration,norm_pos_x,norm_pos_y,dispersion\n"
        "1,10.1,200.0,0.5,0.5,1.0\n"
        "2,,300.0,0.25,0.75,1.0\n"
    )
    with pytest.raises(GazeFormatError, match="line 3"):
        read_recording(str(path))
