"""Gazepoint Analysis 6.x reduced exports: ``TIME,TIMETICK,FPOGX,FPOGY,FPOGD,FPOGV,`` (a trailing
empty column; no FPOGID, no FPOGS, no BPOG, no media columns), read as all_gaze or fixations
whether detected or declared. Without FPOGID the fixations are derived from FPOGD (the duration so
far of the current fixation: TIME - FPOGD is its start). Checked against two files written here
with the truth, and against the real Gazepoint 6.9 exports cut down to the same columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ml.gaze import detect_format, read_recording
from ml.gaze.analysis import ReadingSetup, analyse_recording
from ml.gaze.formats import _csv
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers.gazepoint import GAZEPOINT_REDUCED_COLUMNS, write_gazepoint_csv
from tests.shared_formats import FORMATS_DIR, needs

HEADER = "TIME,TIMETICK,FPOGX,FPOGY,FPOGD,FPOGV,"
KEY = "00000000-cafe0000-00000000-00000000-00000chf"
H, W = 300, 250
RATE = 60.0
SCREEN = (1920, 1080)
SETUP = ReadingSetup(screen_px=SCREEN, screen_mm=(531.0, 299.0), distance_mm=650.0)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """One reading written as a reduced 6.x all_gaze and fixations export, with its truth."""
    reader = Radiologist(name="R1", n_fixations=15, calibration_offset_deg=(0.0, 0.0))
    reading = simulate_reading(
        make_phantom("CHF", seed=1, height=H, width=W), reader, rate_hz=RATE, seed=0,
        image_key=KEY,
    )  # fmt: skip
    return write_gazepoint_csv([reading], tmp_path_factory.mktemp("gp6"), seed=3, reduced=True)


@pytest.fixture(params=["fast", "careful"])
def path_kind(request, monkeypatch) -> str:
    monkeypatch.setattr(_csv, "FAST_CSV", request.param == "fast")
    return request.param


def truth(written) -> list[dict]:
    return json.loads(written["truth"].read_text())["readings"][0]["fixations"]


@pytest.mark.parametrize("name", ["all_gaze", "fixations"])
def test_written_files_have_exactly_the_reduced_header(written, name) -> None:
    first = written[name].read_text(encoding="utf-8").splitlines()[0]
    assert first == HEADER == ",".join(GAZEPOINT_REDUCED_COLUMNS) + ","
    assert all(ln.endswith(",") for ln in written[name].read_text().splitlines())
    assert detect_format(written[name]) == "gazepoint"


@pytest.mark.parametrize("declared", [None, "gazepoint"])
def test_all_gaze_fixations_derived_from_fpogd(written, declared, path_kind) -> None:
    rec = read_recording(str(written["all_gaze"]), format=declared, screen_size_px=SCREEN)
    t = truth(written)
    assert rec.format == "gazepoint_all_gaze"
    assert rec.stimuli == [] and (rec.samples.stimulus == -1).all()
    assert rec.meta["fixation_ids"].startswith("derived")
    assert "10 MHz" in rec.time_origin  # TIMETICK states no f=: measured against TIME
    fx = rec.fixations
    assert len(fx) == len(t)  # one fixation per true fixation, none split, none merged
    start = np.array([f["start_s"] for f in t]) * 1e3
    dur = np.array([f["duration_s"] for f in t]) * 1e3
    np.testing.assert_allclose(fx.start_ms - fx.start_ms[0], start - start[0], atol=0.02)
    # FPOGD on a fixation's last sample covers it up to that sample: one interval short.
    np.testing.assert_allclose(fx.duration_ms, dur - 1e3 / RATE, atol=0.02)
    assert len(rec.samples) == len(written["all_gaze"].read_text().splitlines()) - 1
    assert rec.samples.valid.mean() > 0.9


@pytest.mark.parametrize("declared", [None, "gazepoint"])
def test_fixations_file_one_row_per_fixation(written, declared, path_kind) -> None:
    rec = read_recording(str(written["fixations"]), format=declared, screen_size_px=SCREEN)
    t = truth(written)
    assert rec.format == "gazepoint_fixations" and rec.samples is None
    fx = rec.fixations
    assert len(fx) == len(t)
    start = np.array([f["start_s"] for f in t]) * 1e3
    np.testing.assert_allclose(fx.start_ms - fx.start_ms[0], start - start[0], atol=0.02)
    np.testing.assert_allclose(fx.duration_ms, [f["duration_s"] * 1e3 for f in t], atol=0.01)
    assert not any("FPOGS + FPOGD" in w for w in rec.warnings)


@pytest.mark.parametrize("name", ["all_gaze", "fixations"])
def test_declared_kind_wins(written, name) -> None:
    kind = "fixations" if name == "fixations" else "all_gaze"
    rec = read_recording(str(written[name]), format="gazepoint", kind=kind, screen_size_px=SCREEN)
    assert rec.format == f"gazepoint_{kind}" and len(rec.fixations) == len(truth(written))


@pytest.mark.parametrize("name", ["all_gaze", "fixations"])
def test_positions_through_the_image_key(written, name) -> None:
    rec = read_recording(str(written[name]), screen_size_px=SCREEN)
    out = analyse_recording(rec, SETUP, images={KEY: (W, H)}, image_key=KEY)
    [reading] = out.readings
    t = truth(written)
    assert reading.key == KEY and len(reading.duration) == len(t)
    # Five-decimal screen fractions: a fraction of an image pixel.
    np.testing.assert_allclose(reading.x, [f["image_x"] for f in t], atol=0.5)
    np.testing.assert_allclose(reading.y, [f["image_y"] for f in t], atol=0.5)
    assert out.unmatched == [] and out.quality["dropped"]["count"] == 0


def test_an_export_naming_no_image_needs_the_image_key(written) -> None:
    from ml.gaze import GazeFormatError

    rec = read_recording(str(written["fixations"]), screen_size_px=SCREEN)
    assert any("image_key" in w for w in rec.warnings)
    with pytest.raises(GazeFormatError, match="image_key"):
        analyse_recording(rec, SETUP, images={KEY: (W, H)})


def _edit(src: Path, dst: Path, edit) -> Path:
    rows = list(csv.reader(src.open(newline="")))
    edit(rows)
    with dst.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return dst


def test_off_screen_positions_are_kept_off_the_image(written, tmp_path) -> None:
    """Negative and > 1 fractions (off the screen) are fixations off the image, not errors."""

    def fixations(rows):
        rows[3][2] = "-0.12000"  # FPOGX of the third fixation
        rows[5][3] = "1.20000"  # FPOGY of the fifth

    def all_gaze(rows):
        # Every valid sample of the fixation that starts second moves off the screen.
        start = [round(float(r[0]) - float(r[4]), 4) for r in rows[1:]]
        second = sorted(set(s for s, r in zip(start, rows[1:], strict=True) if r[5] == "1"))[1]
        for s, r in zip(start, rows[1:], strict=True):
            if s == second and r[5] == "1":
                r[2] = "-0.25000"

    for name, edit in (("fixations", fixations), ("all_gaze", all_gaze)):
        path = _edit(written[name], tmp_path / f"{name}.csv", edit)
        rec = read_recording(str(path), screen_size_px=SCREEN)
        assert len(rec.fixations) == len(truth(written))
        out = analyse_recording(rec, SETUP, images={KEY: (W, H)}, image_key=KEY)
        [reading] = out.readings
        assert len(reading.duration) == len(truth(written))  # kept, not dropped
        if name == "fixations":
            assert reading.x[2] < 0 and not reading.on_image[2]
            assert reading.y[4] > H and not reading.on_image[4]
            want = [f["on_image"] and k not in (2, 4) for k, f in enumerate(truth(written))]
            assert reading.on_image.tolist() == want
        else:
            assert reading.x[1] < 0 and not reading.on_image[1]


# ------------------------------------------------------------- the real Gazepoint 6.9 exports


def _reduce(src: Path, dst: Path, keep_time_suffix: bool) -> Path:
    """A real export cut down to TIME,TIMETICK,FPOGX,FPOGY,FPOGD,FPOGV and a trailing column."""
    with src.open(newline="") as fh:
        rows = list(csv.reader(fh))
    h = {name: i for i, name in enumerate(rows[0])}
    time_col = next(c for c in rows[0] if c.startswith("TIME("))
    tick_col = next(c for c in rows[0] if c.startswith("TIMETICK"))
    cols = [time_col, tick_col, "FPOGX", "FPOGY", "FPOGD", "FPOGV"]
    header = [time_col if keep_time_suffix else "TIME", tick_col if keep_time_suffix else
              "TIMETICK", *cols[2:]]  # fmt: skip
    lines = [",".join(header) + ",\n"]
    lines += [",".join(r[h[c]] for c in cols) + ",\n" for r in rows[1:]]
    dst.write_text("".join(lines), encoding="utf-8")
    return dst


@needs(FORMATS_DIR)
@pytest.mark.parametrize("keep_time_suffix", [False, True])
@pytest.mark.parametrize(
    "rel",
    ["gazepoint_csv/DEV_TheD2Lab_User1_all_gaze_first300.csv",
     "gazepoint_csv/DEV_TheD2Lab_User1_fixations.csv"],
)  # fmt: skip
def test_real_exports_cut_to_the_reduced_columns_give_the_same_fixations(
    rel, keep_time_suffix, tmp_path, path_kind
) -> None:
    full_path = FORMATS_DIR / rel
    reduced = _reduce(full_path, tmp_path / "reduced.csv", keep_time_suffix)
    assert detect_format(reduced) == "gazepoint"
    full = read_recording(full_path, screen_size_px=SCREEN)
    cut = read_recording(reduced, screen_size_px=SCREEN)
    assert cut.format == full.format  # all_gaze or fixations, told from the content alone
    a, b = full.fixations, cut.fixations
    assert len(b) == len(a) > 1  # the derived fixations are the exported FPOGIDs
    np.testing.assert_allclose(b.start_ms, a.start_ms, atol=0.02)  # FPOGS = TIME - FPOGD
    np.testing.assert_array_equal(b.duration_ms, a.duration_ms)
    np.testing.assert_array_equal(b.x, a.x)
    np.testing.assert_array_equal(b.y, a.y)
    if full.samples is not None:
        np.testing.assert_array_equal(cut.samples.time_ms, full.samples.time_ms)
        # Off-screen fractions (the real file has FPOGY -0.10965) are kept as they are.
        assert cut.samples.y.min() < 0
    out = analyse_recording(cut, SETUP, images={"img": (W, H)}, image_key="img")
    assert len(out.readings[0].duration) == len(a) and out.quality["dropped"]["count"] == 0
