"""Every DEV and EDGE file in ../shared/formats is parsed (checked against facts of the file,
computed here independently with plain string handling) or refused with a clear message."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from ml.gaze import GazeFormatError, detect_format, quality_report, read_recording
from tests.shared_formats import FORMATS_DIR, needs

pytestmark = needs(FORMATS_DIR)


def f(rel: str) -> Path:
    return FORMATS_DIR / rel


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()


# ---------------------------------------------------------------- EyeLink ASC


def asc_facts(path: Path) -> dict:
    lines = lines_of(path)
    samples = [ln.split("\t") for ln in lines if ln[:1].isdigit()]
    rate = float(re.search(r"^SAMPLES.*RATE\s+([\d.]+)", "\n".join(lines), re.M).group(1))
    return {
        "efix": [ln.split() for ln in lines if ln.startswith("EFIX")],
        "eblink": sum(ln.startswith("EBLINK") for ln in lines),
        "n_samples": len(samples),
        "first_t": float(samples[0][0]),
        "last_t": float(samples[-1][0]),
        "rate": rate,
        "trialids": sum(" TRIALID" in ln for ln in lines if ln.startswith("MSG")),
        "validations": [ln for ln in lines if "!CAL VALIDATION" in ln],
        "missing_left": sum(s[1].strip() == "." for s in samples),
    }


ASC_FILES = [
    "eyelink_asc/DEV_pymovements_eyelink_monocular_example.asc",
    "eyelink_asc/DEV_pymovements_eyelink_binocular_example.asc",
    "eyelink_asc/EDGE_pymovements_eyelink_monocular_2khz_floattime.asc",
    "eyelink_asc/EDGE_mne_test_eyelink_HREF.asc",
]


@pytest.mark.parametrize("rel", ASC_FILES)
def test_asc_matches_the_file(rel: str) -> None:
    path = f(rel)
    facts = asc_facts(path)
    assert detect_format(path) == "eyelink_asc"
    rec = read_recording(path)
    s = rec.samples
    assert len(s) == facts["n_samples"]
    assert s.time_ms[0] == facts["first_t"] and s.time_ms[-1] == facts["last_t"]
    assert rec.sampling_rate_declared_hz == facts["rate"]
    assert len(rec.fixations) == len(facts["efix"])
    # EFIX: eye start end duration x y pupil
    np.testing.assert_array_equal(rec.fixations.start_ms, [float(e[2]) for e in facts["efix"]])
    np.testing.assert_array_equal(rec.fixations.duration_ms, [float(e[4]) for e in facts["efix"]])
    np.testing.assert_array_equal(rec.fixations.x, [float(e[5]) for e in facts["efix"]])
    # An event's duration covers its samples: end - start + one sample interval.
    np.testing.assert_allclose(
        rec.fixations.duration_ms,
        rec.fixations.extra["end_ms"] - rec.fixations.start_ms + 1000.0 / facts["rate"],
    )
    assert len(rec.blinks or []) == facts["eblink"]
    assert len(rec.stimuli) == facts["trialids"]
    vals = [c for c in rec.calibrations if c.kind == "validation"]
    assert len(vals) == len(facts["validations"])
    for c, ln in zip(vals, facts["validations"], strict=True):
        assert f"ERROR {c.avg_error_deg:.2f} avg." in ln and f"{c.max_error_deg:.2f} max" in ln
    assert rec.tracker.startswith("SR Research EYELINK")


def test_asc_monocular_header_facts() -> None:
    rec = read_recording(f(ASC_FILES[0]))
    assert rec.screen_size_px == (1280, 1024)  # DISPLAY_COORDS 0 0 1279 1023 is inclusive
    assert rec.samples.space == "screen_px"
    # Hand-edited: messages out of time order are reported, not fatal.
    assert any("earlier than a preceding message" in w for w in rec.warnings)
    assert [s.key for s in rec.stimuli] == ["0", "1", "2", "3", "4"]


def test_asc_binocular_without_display_coords_asks_for_the_screen() -> None:
    path = f(ASC_FILES[1])
    facts = asc_facts(path)
    rec = read_recording(path)
    assert rec.screen_size_px is None
    assert any("screen size is unknown" in w for w in rec.warnings)
    assert set(rec.samples.eyes) == {"left", "right"}
    assert int((~rec.samples.eyes["left"].valid).sum()) == facts["missing_left"]
    assert set(rec.fixations.extra["eye"]) == {"left", "right"}
    given = read_recording(path, screen_size_px=(1920, 1080))
    assert given.screen_size_px == (1920, 1080) and not any(
        "screen size" in w for w in given.warnings
    )
    report = quality_report(rec)
    assert report.blink_count == facts["eblink"]
    assert report.validation_error_deg == pytest.approx(0.41)  # the worse eye of the pair


def test_asc_2khz_float_times() -> None:
    rec = read_recording(f(ASC_FILES[2]))
    assert rec.sampling_rate_declared_hz == 2000.0
    assert np.any(rec.samples.time_ms % 1 == 0.5)
    assert rec.fixations.duration_ms[0] == 132.5


def test_asc_href_is_flagged_and_not_mappable() -> None:
    from ml.gaze import map_to_image

    rec = read_recording(f(ASC_FILES[3]))
    assert rec.samples.space == "href"
    assert any("HREF" in w for w in rec.warnings)
    with pytest.raises(GazeFormatError, match="head-referenced"):
        map_to_image(rec.samples.x, rec.samples.y, space="href", image_size=(10, 10))


def test_edf_is_refused_with_edf2asc_advice() -> None:
    path = f("eyelink_edf/DEV_eyelinkio_test_raw.edf")
    assert detect_format(path) == "eyelink_edf"
    with pytest.raises(GazeFormatError, match="edf2asc") as e:
        read_recording(path)
    assert str(path) in str(e.value)


def test_asc_renamed_is_still_asc(tmp_path: Path) -> None:
    renamed = tmp_path / "upload.csv"
    renamed.write_bytes(f(ASC_FILES[0]).read_bytes())
    assert detect_format(renamed) == "eyelink_asc"


def test_dataviewer_report() -> None:
    path = f("eyelink_dataviewer_report/DEV_pymovements_18sat_fixfinal_fixation_report.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rec = read_recording(path)
    assert rec.format == "eyelink_dataviewer_report"
    assert len(rec.fixations) == len(rows)
    np.testing.assert_array_equal(rec.fixations.x, [float(r["CURRENT_FIX_X"]) for r in rows])
    np.testing.assert_array_equal(
        rec.fixations.duration_ms, [float(r["CURRENT_FIX_DURATION"]) for r in rows]
    )
    assert len(rec.stimuli) == len({(r["RECORDING_SESSION_LABEL"], r["TRIAL_INDEX"]) for r in rows})
    assert any("CURRENT_FIX_START" in w for w in rec.warnings)


# ---------------------------------------------------------------- Tobii


def tsv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return rows[0], rows[1:]


def test_tobii_pro_lab() -> None:
    path = f("tobii_pro_lab_tsv/DEV_cemGr_IVT-normal_Data_export_first300.tsv")
    header, rows = tsv_rows(path)
    h = {n: i for i, n in enumerate(header)}
    eye_rows = [r for r in rows if r[h["Sensor"]] == "Eye Tracker"]
    fix_ids = {
        r[h["Eye movement type index"]] for r in eye_rows if r[h["Eye movement type"]] == "Fixation"
    }
    assert detect_format(path) == "tobii_pro_lab_tsv"
    rec = read_recording(path)
    s = rec.samples
    assert len(s) == len(eye_rows)  # Mouse and event-only rows are not samples
    assert s.time_ms[0] == float(eye_rows[0][0]) and s.time_ms[-1] == float(eye_rows[-1][0])
    assert len(rec.fixations) == len(fix_ids)
    # Decimal commas: 2,925 mm pupils read as 2.925.
    pupils = [r[h["Pupil diameter filtered [mm]"]] for r in eye_rows]
    first = next(i for i, p in enumerate(pupils) if p)
    assert s.pupil[first] == float(pupils[first].replace(",", "."))
    valid = [r[h["Gaze point X [DACS px]"]] != "" for r in eye_rows]
    assert int(s.valid.sum()) <= sum(valid)
    assert rec.screen_size_px == (1920, 1080)
    val = [c for c in rec.calibrations if c.kind == "validation"][0]
    assert val.avg_error_deg == float(
        rows[0][h["Average validation accuracy [°]"]].replace(",", ".")
    )
    assert any(m[1] == "RecordingStart" for m in rec.messages)
    assert [st.name for st in rec.stimuli] == ["Eyetracker Calibration"]


def test_tobii_studio_bom_crlf() -> None:
    path = f("tobii_studio_legacy_tsv/DEV_TheD2Lab_TobiiStudio345_tobiiData_first300.tsv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    header, rows = tsv_rows(path)
    h = {n: i for i, n in enumerate(header)}
    assert detect_format(path) == "tobii_studio_tsv"
    rec = read_recording(path)
    samples = [r for r in rows if r[h["GazePointIndex"]]]
    assert len(rec.samples) == len(samples)
    assert rec.samples.time_ms[-1] == float(samples[-1][h["RecordingTimestamp"]])
    fix_ids = {r[h["FixationIndex"]] for r in samples if r[h["GazeEventType"]] == "Fixation"}
    assert len(rec.fixations) == len(fix_ids)
    lost = sum(min(int(r[h["ValidityLeft"]]), int(r[h["ValidityRight"]])) > 1 for r in samples)
    assert int((~rec.samples.valid).sum()) == lost
    assert not np.any(rec.samples.pupil == -1.0)  # -1.00 means no pupil
    assert rec.screen_size_px == (1920, 1080)
    assert rec.sampling_rate_measured_hz == pytest.approx(120, rel=0.05)


# ---------------------------------------------------------------- Gazepoint


def gp_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_gazepoint_all_gaze() -> None:
    path = f("gazepoint_csv/DEV_TheD2Lab_User1_all_gaze_first300.csv")
    header, rows = gp_rows(path)
    assert header[-1] == ""  # the trailing comma
    assert detect_format(path) == "gazepoint"
    rec = read_recording(path)
    assert rec.format == "gazepoint_all_gaze"
    assert len(rec.samples) == len(rows)
    assert rec.samples.space == "screen_norm"
    ticks = [int(r["TIMETICK(f=10000000)"]) for r in rows]
    np.testing.assert_allclose(rec.samples.time_ms[-1], (ticks[-1] - ticks[0]) / 1e4, atol=1e-6)
    ids = {r["FPOGID"] for r in rows if r["FPOGV"] == "1"}
    assert len(rec.fixations) == len(ids)
    np.testing.assert_array_equal(rec.samples.x, [float(r["BPOGX"]) for r in rows])
    assert rec.sampling_rate_measured_hz == pytest.approx(60, rel=0.05)
    assert [s.key for s in rec.stimuli] == ["NewMedia0"]


def test_gazepoint_fixations_file() -> None:
    path = f("gazepoint_csv/DEV_TheD2Lab_User1_fixations.csv")
    _, rows = gp_rows(path)
    rec = read_recording(path)
    assert rec.format == "gazepoint_fixations" and rec.samples is None
    assert len(rec.fixations) == len(rows)
    np.testing.assert_allclose(rec.fixations.duration_ms, [float(r["FPOGD"]) * 1e3 for r in rows])
    # Each row is the fixation's last sample: its TIME is FPOGS + FPOGD.
    time_col = next(k for k in rows[0] if k.startswith("TIME("))
    np.testing.assert_allclose(
        rec.fixations.end_ms - rec.fixations.start_ms[0],
        [(float(r[time_col]) - float(rows[0]["FPOGS"])) * 1e3 for r in rows],
        atol=0.05,  # TIME, FPOGS and FPOGD are each rounded to 10 us
    )
    assert not any("FPOGS + FPOGD" in w for w in rec.warnings)


def test_gazepoint_excel_resaved() -> None:
    path = f("gazepoint_csv/EDGE_TheD2Lab_test_all_gaze_excel_resaved_first40.csv")
    header, rows = gp_rows(path)
    assert header[-1] == "VID_FRAME"  # Excel dropped the trailing comma
    rec = read_recording(path)
    assert len(rec.samples) == len(rows)
    assert any("lost its precision" in w for w in rec.warnings)
    time_col = next(k for k in header if k.startswith("TIME("))
    np.testing.assert_allclose(rec.samples.time_ms, [float(r[time_col]) * 1e3 for r in rows])
    # Out-of-range fractions (-0.5, 1.1) are kept, to be flagged off-screen when mapped.
    fpog = rec.samples.extra["fpog_x"]
    np.testing.assert_array_equal(fpog, [float(r["FPOGX"]) for r in rows])
    assert fpog.min() == -0.5 and fpog.max() == 1.1


def test_gazepoint_data_summary_refused() -> None:
    path = f("gazepoint_csv/DEV_TheD2Lab_Data_Summary_export.csv")
    with pytest.raises(GazeFormatError, match="all_gaze"):
        read_recording(path)


# ---------------------------------------------------------------- Pupil Labs, generic


def test_pupil_core_flips_y_and_uses_confidence() -> None:
    path = f("pupil_labs_core_player/DEV_BonnenLab_Saccade_gaze_positions_first300.csv")
    _, rows = gp_rows(path)
    rec = read_recording(path)
    assert rec.format == "pupil_core" and rec.samples.space == "camera_norm"
    assert len(rec.samples) == len(rows)
    np.testing.assert_allclose(rec.samples.y, [1 - float(r["norm_pos_y"]) for r in rows])
    assert int(rec.samples.valid.sum()) == sum(float(r["confidence"]) >= 0.6 for r in rows)
    assert rec.samples.time_ms[0] == pytest.approx(float(rows[0]["gaze_timestamp"]) * 1e3)


def test_neon_marker_mapper() -> None:
    gaze = f("pupil_labs_neon_cloud/DEV_markermapper_gaze_first300.csv")
    fix = f("pupil_labs_neon_cloud/DEV_markermapper_fixations.csv")
    sections = f("pupil_labs_neon_cloud/DEV_markermapper_sections.csv")
    _, grows = gp_rows(gaze)
    _, frows = gp_rows(fix)
    g = read_recording(gaze, sections=str(sections))
    assert g.samples.space == "surface_norm" and len(g.samples) == len(grows)
    assert g.samples.time_ms[0] == pytest.approx(int(grows[0]["timestamp [ns]"]) / 1e6, abs=1e-3)
    assert g.stimuli[0].key == "T1encodeBegin"
    fr = read_recording(fix)
    assert len(fr.fixations) == len(frows)
    np.testing.assert_array_equal(
        fr.fixations.duration_ms, [float(r["duration [ms]"]) for r in frows]
    )
    for companion in (
        sections,
        f("pupil_labs_neon_cloud/DEV_markermapper_surface_positions_first50.csv"),
    ):
        with pytest.raises(GazeFormatError, match="companion"):
            read_recording(companion)


def test_generic_csv_needs_declared_units() -> None:
    path = f("generic_csv/DEV_pymovements_gaze_toy_example_time_x_y.csv")
    with pytest.raises(GazeFormatError, match="time unit"):
        read_recording(path)
    rec = read_recording(path, time_unit="ms", space="screen_px")
    _, rows = gp_rows(path)
    assert len(rec.samples) == len(rows)
    assert rec.sampling_rate_measured_hz == pytest.approx(250)


def test_generic_csv_missing_values_and_ragged_rows() -> None:
    path = f("generic_csv/EDGE_pymovements_missing_values_example.csv")
    raw = lines_of(path)
    rec = read_recording(
        path, time_unit="ms", space="screen_px", columns={"x": "pixel_x", "y": "pixel_y"}
    )
    assert len(rec.samples) == len(raw) - 1
    assert int(rec.samples.valid.sum()) == sum(ln.split(",")[1] != "" for ln in raw[1:])
    assert any("repeat the previous sample's time" in w for w in rec.warnings)


@pytest.mark.parametrize(
    "rel",
    [
        "egd_cxr/SCHEMA_ONLY_fixations_header.csv",
        "reflacx/SCHEMA_ONLY_main_data_ID_fixations_header.csv",
        "reflacx/SCHEMA_ONLY_gaze_data_ID_gaze_header.csv",
    ],
)
def test_schema_only_headers_are_recognised_but_empty(rel: str) -> None:
    path = f(rel)
    assert detect_format(path) in ("egd_cxr", "reflacx")
    with pytest.raises(GazeFormatError, match="no data rows"):
        read_recording(path)
