"""Format writers: files shaped like the real exports, parsed back to the ground truth."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import (
    EGD_COLUMNS,
    GAZEPOINT_COLUMNS,
    MASTER_SHEET_COLUMNS,
    REFLACX_FIXATION_COLUMNS,
    TOBII_PRO_LAB_COLUMNS,
    write_egd_cxr,
    write_eyelink_asc,
    write_gazepoint_csv,
    write_generic_csv,
    write_reflacx,
    write_tobii_pro_lab_tsv,
)
from ml.synthetic.writers.truth import fixation_measured_positions
from tests.shared_formats import FORMATS_DIR as FORMATS
from tests.shared_formats import in_ci

H, W = 300, 250
OFFSET_DEG = (0.4, -0.3)


def real_header(relative: str, sep: str = ",") -> list[str] | None:
    """The header of a real export under ../shared/formats, or None where that folder is absent
    (the rest of the test still runs: the header is compared to the format's constants too)."""
    path = FORMATS / relative
    if not path.exists():
        assert not in_ci(), f"{path} is absent; CI must compare with the real export's header"
        return None
    return path.read_text(encoding="utf-8").splitlines()[0].split(sep)


@pytest.fixture(scope="module")
def phantoms():
    return [
        make_phantom("CHF", seed=1, height=H, width=W),
        make_phantom("Pneumonia", seed=2, height=H, width=W),
        make_phantom("Normal", seed=3, height=H, width=W),
    ]


def readings(phantoms, rate, n_fix=25, zoom=False, names=("R1",)):
    out = []
    for i, p in enumerate(phantoms):
        reader = Radiologist(
            name=names[i % len(names)],
            n_fixations=n_fix,
            calibration_offset_deg=OFFSET_DEG,
            blink_rate_hz=0.8,
        )
        key = f"{i:08x}-00000000-00000000-00000000-{p.label.lower():0>8}"
        out.append(simulate_reading(p, reader, rate_hz=rate, seed=i, image_key=key, zoom=zoom))
    return out


@pytest.fixture(scope="module")
def at60(phantoms):
    return readings(phantoms, 60)


@pytest.fixture(scope="module")
def at1000(phantoms):
    return readings(phantoms[:2], 1000, n_fix=20)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_egd_cxr_files_parse_back_to_the_truth(at60, tmp_path):
    paths = write_egd_cxr(at60, tmp_path, calibration_every=2, seed=1)
    header = paths["fixations"].read_text().splitlines()[0].split(",")
    assert tuple(header) == EGD_COLUMNS and len(header) == 37
    # Compared with the real export's header where ../shared/formats is present.
    assert header == (real_header("egd_cxr/SCHEMA_ONLY_fixations_header.csv") or header)
    ms_header = real_header("egd_cxr/SCHEMA_ONLY_master_sheet_header_first11cols.csv")
    assert list(MASTER_SHEET_COLUMNS[:11]) == (ms_header or list(MASTER_SHEET_COLUMNS[:11]))
    truth = json.loads(paths["truth"].read_text())["readings"]
    kinds = [t["kind"] for t in truth]
    assert kinds == ["calibration", "image"] * 3
    fix = rows(paths["fixations"])
    gaze = rows(paths["eye_gaze"])
    sheet = rows(paths["master_sheet"])
    assert [r["dicom_id"] for r in sheet] == [r.image_key for r in at60]
    calibration_ids = {t["image_key"] for t in truth if t["kind"] == "calibration"}
    assert not calibration_ids & {r["dicom_id"] for r in sheet}
    assert len(gaze) == sum(t["n_samples"] for t in truth)
    for media_id, t in enumerate(truth):
        mine = [r for r in fix if r["MEDIA_ID"] == str(media_id)]
        assert len(mine) == len(t["fixations"])
        assert {r["DICOM_ID"] for r in mine} == {t["image_key"]}
        for r, tf in zip(mine, t["fixations"], strict=True):
            s, d = float(r["FPOGS"]), float(r["FPOGD"])
            assert float(r["Time (in secs)"]) == pytest.approx(s + d, abs=1e-9)
            assert s == pytest.approx(tf["start_s"], abs=1e-5)
            assert d == pytest.approx(tf["duration_s"], abs=1e-5)
            sx = float(r["FPOGX"]) * 1920 - t["calibration_offset_px"][0]
            sy = float(r["FPOGY"]) * 1080 - t["calibration_offset_px"][1]
            assert (sx, sy) == pytest.approx((tf["screen_x"], tf["screen_y"]), abs=4)
            ox, oy = int(r["X_ORIGINAL"]), int(r["Y_ORIGINAL"])
            if not tf["on_image"]:
                assert (ox, oy) == (-1, -1)
            elif ox >= 0:
                scale = (t["views"][0]["screen_rect"][2] - t["views"][0]["screen_rect"][0]) / t[
                    "image_width"
                ]
                # Recorded = true + calibration offset, mapped into the image.
                ex = tf["image_x"] + t["calibration_offset_px"][0] / scale
                ey = tf["image_y"] + t["calibration_offset_px"][1] / scale
                assert (ox, oy) == pytest.approx((ex, ey), abs=5 / scale + 1)
    # Calibration screens estimate the calibration error: mean gaze minus the dot.
    cal = [r for r in gaze if r["DICOM_ID"] in calibration_ids and r["BPOGV"] == "1"]
    dx = np.mean([float(r["BPOGX"]) * 1920 for r in cal]) - 960
    assert dx == pytest.approx(truth[0]["calibration_offset_px"][0], abs=1.5)
    # Value formats: ints as ints, TIMETICK as a float, floats with repr noise.
    first = gaze[0]
    assert re.fullmatch(r"\d+\.0", first["TIMETICK(f=10000000)"])
    assert re.fullmatch(r"-?\d+", first["X_ORIGINAL"]) and first["FPOGV"] in ("0", "1")
    assert any(len(r["FPOGX"]) > 12 for r in gaze[:200]), "no repr noise like 0.33879000000000004"
    labels = {r["dicom_id"]: (r["Normal"], r["CHF"], r["pneumonia"]) for r in sheet}
    assert labels[at60[0].image_key] == ("0", "1", "0")
    assert labels[at60[1].image_key] == ("0", "0", "1")
    assert labels[at60[2].image_key] == ("1", "0", "0")
    assert all(re.fullmatch(r"\d0 - \d0", r["anchor_age"]) for r in sheet)
    lost = [r for r in gaze if r["BPOGV"] == "0"]
    assert lost and all(float(r["BPOGX"]) == 0.0 for r in lost)


def test_egd_cxr_is_byte_identical_for_one_seed(at60, tmp_path):
    a = write_egd_cxr(at60[:1], tmp_path / "a", seed=5)
    b = write_egd_cxr(at60[:1], tmp_path / "b", seed=5)
    for name in ("fixations", "eye_gaze", "master_sheet", "truth"):
        assert a[name].read_bytes() == b[name].read_bytes()


def parse_asc(path: Path) -> dict:
    trials, current = [], None
    out = {"display": None, "trials": trials, "header": []}
    for line in path.read_text().splitlines():
        if line.startswith("**"):
            out["header"].append(line)
        elif "DISPLAY_COORDS" in line:
            out["display"] = [int(v) for v in line.split()[-4:]]
        elif line.startswith("MSG") and "TRIALID" in line:
            current = {
                "samples": [],
                "efix": [],
                "esacc": [],
                "eblink": [],
                "msgs": [],
                "rate": None,
            }
            trials.append(current)
        elif line.startswith("SAMPLES"):
            current["rate"] = float(line.split("\t")[line.split("\t").index("RATE") + 1])
        elif line.startswith("MSG"):
            current and current["msgs"].append(line)
        elif line.startswith("EFIX"):
            current["efix"].append(line.split()[2:])
        elif line.startswith("ESACC"):
            current["esacc"].append(line.split()[2:])
        elif line.startswith("EBLINK"):
            current["eblink"].append(line.split()[2:])
        elif line[:1].isdigit():
            current["samples"].append(line.split("\t"))
    return out


def test_eyelink_asc_parses_back_to_the_truth(at1000, tmp_path):
    paths = write_eyelink_asc(at1000, tmp_path / "session.asc", seed=3)
    asc = parse_asc(paths["asc"])
    from ml.gaze import read_recording

    warnings = read_recording(paths["asc"]).warnings  # its "-8 !V IMGLOAD" offsets are in order
    assert not [w for w in warnings if "earlier than a preceding message" in w], warnings
    assert asc["header"][0].startswith("** CONVERTED FROM") and asc["header"][1].startswith(
        "** DATE:"
    )
    assert asc["display"] == [0, 0, 1919, 1079]
    assert len(asc["trials"]) == 2
    truth = json.loads(paths["truth"].read_text())["readings"]
    for trial, r, t in zip(asc["trials"], at1000, truth, strict=True):
        assert trial["rate"] == 1000.0
        assert any(f"IMGLOAD CENTER images/{r.image_key}.png" in m for m in trial["msgs"])
        assert len(trial["samples"]) == r.t.size
        times = np.array([int(s[0]) for s in trial["samples"]])
        assert (np.diff(times) == 1).all()
        lost = [s for s in trial["samples"] if s[1].strip() == "."]
        assert len(lost) == (~r.valid).sum() and all(s[3].strip() == "0.0" for s in lost)
        t0 = t["tracker_time_ms_at_first_sample"]
        assert len(trial["efix"]) == len(r.fixations)
        mx, my = fixation_measured_positions(r)
        for k, e in enumerate(trial["efix"]):
            start, end, dur = int(e[0]), int(e[1]), int(e[2])
            assert (start - t0) / 1000 == pytest.approx(r.fixations.start_s[k], abs=1e-9)
            assert dur == end - start + 1 == round(r.fixations.duration_s[k] * 1000)
            if e[3] != ".":
                assert (float(e[3]), float(e[4])) == pytest.approx((mx[k], my[k]), abs=0.06)
                true = (
                    r.fixations.screen_x[k] + r.calibration_offset_px[0],
                    r.fixations.screen_y[k] + r.calibration_offset_px[1],
                )
                assert (float(e[3]), float(e[4])) == pytest.approx(true, abs=5)
        assert len(trial["eblink"]) == r.blink_count
        assert len(trial["esacc"]) == len(r.fixations) - 1
        amps = [float(s[7]) for s in trial["esacc"] if s[7] != "."]
        assert max(amps) < 60


def test_eyelink_refuses_an_unknown_rate(at60, tmp_path):
    with pytest.raises(ValueError, match="Hz"):
        write_eyelink_asc(at60[:1], tmp_path / "x.asc")


def test_reflacx_positions_are_image_pixels_through_the_zoomed_view(phantoms, tmp_path):
    rs = readings(phantoms[:2], 1000, n_fix=24, zoom=True, names=("A", "B"))
    paths = write_reflacx(rs, tmp_path, phase=3, seed=2)
    meta = rows(paths["metadata"])
    assert list(meta[0])[:8] == [
        "id",
        "split",
        "eye_tracking_data_discarded",
        "image",
        "dicom_id",
        "subject_id",
        "image_size_x",
        "image_size_y",
    ]
    truth = json.loads(paths["truth"].read_text())["readings"]
    assert [m["id"] for m in meta] == [t["id"] for t in truth]
    assert meta[0]["id"].startswith("P301R") and meta[1]["id"].startswith("P302R")
    for m, r, t in zip(meta, rs, truth, strict=True):
        assert m["dicom_id"] == r.image_key and m["eye_tracking_data_discarded"] == "False"
        fix_path = tmp_path / "main_data" / m["id"] / "fixations.csv"
        assert fix_path.read_text().splitlines()[0].split(",") == list(REFLACX_FIXATION_COLUMNS)
        # Compared with the real export's header where ../shared/formats is present.
        real = real_header("reflacx/SCHEMA_ONLY_main_data_ID_fixations_header.csv")
        assert list(REFLACX_FIXATION_COLUMNS) == (real or list(REFLACX_FIXATION_COLUMNS))
        fx = rows(fix_path)
        assert len(fx) == len(r.fixations)
        zoomed = 0
        for row, k in zip(fx, range(len(r.fixations)), strict=True):
            start = float(row["timestamp_start_fixation"]) - t["audio_offset_s"]
            assert start == pytest.approx(r.fixations.start_s[k], abs=1e-9)
            v = r.views[r.fixations.view_index[k]]
            # Image px = true image point + the calibration offset seen through this view's zoom.
            ex = r.fixations.image_x[k] + r.calibration_offset_px[0] / v.scale
            ey = r.fixations.image_y[k] + r.calibration_offset_px[1] / v.scale
            assert (float(row["x_position"]), float(row["y_position"])) == pytest.approx(
                (ex, ey), abs=6 / v.scale
            )
            shown = float(row["xmax_shown_from_image"]) - float(row["xmin_shown_from_image"])
            if shown < r.image_width - 1:
                zoomed += 1
                ppd_view = float(row["angular_resolution_x_pixels_per_degree"])
                assert ppd_view == pytest.approx(
                    r.geometry.pixels_per_degree()[0] / v.scale, rel=0.1
                )
        assert zoomed >= 3
        gaze = rows(tmp_path / "gaze_data" / m["id"] / "gaze.csv")
        assert len(gaze) == r.t.size
        assert sum(g["x_position"] == "" for g in gaze) == (~r.valid).sum()
    ellipses = rows(tmp_path / "main_data" / meta[0]["id"] / "anomaly_location_ellipses.csv")
    assert ellipses and ellipses[0]["Enlarged cardiac silhouette"] == "True"


def test_tobii_pro_lab_tsv_matches_the_real_header_and_parses_back(phantoms, tmp_path):
    rs = readings(phantoms[:2], 120, n_fix=15)
    paths = write_tobii_pro_lab_tsv(rs, tmp_path / "export.tsv", seed=1)
    lines = paths["tsv"].read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert tuple(header) == TOBII_PRO_LAB_COLUMNS
    # Compared with the real export's header where ../shared/formats is present.
    real = real_header("tobii_pro_lab_tsv/DEV_cemGr_IVT-normal_Data_export_first300.tsv", "\t")
    assert header == (real or header)
    data = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    eye = [d for d in data if d["Sensor"] == "Eye Tracker"]
    assert len(eye) == sum(r.t.size for r in rs)
    assert any(d["Sensor"] == "Mouse" for d in data)
    events = [(d["Event"], d["Event value"]) for d in data if d["Event"]]
    assert events[0] == ("RecordingStart", "") and events[-1][0] == "RecordingEnd"
    assert ("ImageStimulusStart", rs[1].image_key) in events
    truth = json.loads(paths["truth"].read_text())["readings"]
    for r, t in zip(rs, truth, strict=True):
        mine = [d for d in eye if d["Presented Stimulus name"] == r.image_key]
        assert len(mine) == r.t.size
        ms = np.array([int(d["Recording timestamp [ms]"]) for d in mine])
        expect = t["recording_timestamp_ms_at_first_sample"] + r.t * 1000
        assert np.abs(ms - expect).max() <= 0.5
        valid = np.array([d["Validity left"] == "Valid" for d in mine])
        assert np.array_equal(valid, r.valid)
        for d, i in zip(mine, range(r.t.size), strict=True):
            if valid[i]:
                assert "," in d["Pupil diameter left [mm]"]  # decimal comma
                assert int(d["Gaze point X [DACS px]"]) == pytest.approx(r.x[i], abs=0.51)
            if r.fixation_index[i] >= 0 and d["Eye movement type"] == "Fixation":
                k = r.fixation_index[i]
                true_x = r.fixations.screen_x[k] + r.calibration_offset_px[0]
                assert float(d["Fixation point X [DACS px]"]) == pytest.approx(true_x, abs=5)


def test_gazepoint_csv_shape_and_fixations(at60, tmp_path):
    paths = write_gazepoint_csv(at60, tmp_path, user="User1", seed=2)
    text = paths["all_gaze"].read_text()
    lines = text.splitlines()
    assert all(line.endswith(",") for line in lines)
    header = lines[0].rstrip(",").split(",")
    assert re.fullmatch(r"TIME\(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}\)", header[3])
    assert header[:3] + header[4:] == [c for c in GAZEPOINT_COLUMNS if c != "TIME"]
    # Compared with the real export's header where ../shared/formats is present.
    real = real_header("gazepoint_csv/DEV_TheD2Lab_User1_all_gaze_first300.csv")
    if real is not None:
        assert header[:3] + header[4:] == real[:3] + real[4:-1]
    assert len(lines) - 1 == sum(r.t.size for r in at60)
    fix = [line.rstrip(",").split(",") for line in paths["fixations"].read_text().splitlines()[1:]]
    assert len(fix) == sum(len(r.fixations) for r in at60)
    col = {c: i for i, c in enumerate(header)}
    for row in fix:
        assert float(row[3]) == pytest.approx(
            float(row[col["FPOGS"]]) + float(row[col["FPOGD"]]), abs=2e-5
        )
        assert re.fullmatch(r"\d\.\d{5}", row[col["FPOGX"]])
    media = [row[1] for row in fix]
    assert media[0] == at60[0].image_key and media[-1] == at60[-1].image_key
    # TIME restarts at each media; TIMETICK runs on.
    gaze = [line.split(",") for line in lines[1:]]
    starts = [g for g in gaze if g[3] == "0.00000"]
    assert len(starts) == len(at60)
    ticks = [int(g[4]) for g in gaze]
    assert all(b > a for a, b in zip(ticks, ticks[1:], strict=False))


def test_generic_csv_samples_and_fixations(at60, tmp_path):
    r = at60[1]
    samples = write_generic_csv(r, tmp_path / "s" / "gaze.csv")
    lines = samples["csv"].read_text().splitlines()
    assert lines[0] == "time,x,y" and len(lines) - 1 == r.t.size
    empty = [ln for ln in lines[1:] if ln.endswith(",,")]
    assert len(empty) == (~r.valid).sum()
    fixes = write_generic_csv(r, tmp_path / "f" / "fix.csv", kind="fixations", coordinates="image")
    frows = rows(fixes["csv"])
    assert len(frows) == len(r.fixations)
    scale = r.views[0].scale
    for row, k in zip(frows, range(len(frows)), strict=True):
        assert float(row["duration"]) == pytest.approx(r.fixations.duration_s[k] * 1000, abs=0.05)
        ex = r.fixations.image_x[k] + r.calibration_offset_px[0] / scale
        assert float(row["x"]) == pytest.approx(ex, abs=5 / scale)
    truth = json.loads(fixes["truth"].read_text())
    assert truth["notes"]["coordinates"].startswith("image")
    assert truth["readings"][0]["display_geometry"]["screen_width_px"] == 1920
