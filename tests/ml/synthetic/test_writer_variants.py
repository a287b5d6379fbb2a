"""Writer variants: Gazepoint 6.x's reduced export, Tobii Pro Lab's calibration screen, EGD-CXR
pads in screen pixels. Each is off by default: the default files are what they always were."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_egd_cxr, write_gazepoint_csv, write_tobii_pro_lab_tsv
from ml.synthetic.writers.gazepoint import GAZEPOINT_REDUCED_COLUMNS
from ml.synthetic.writers.tobii import CALIBRATION_DOTS, CALIBRATION_STIMULUS

H, W = 300, 250


@pytest.fixture(scope="module")
def two():
    reader = Radiologist(name="R1", n_fixations=8)
    return [
        simulate_reading(make_phantom(lbl, seed=i + 1, height=H, width=W), reader, rate_hz=60,
                         seed=i, image_key=f"img{i}")
        for i, lbl in enumerate(("CHF", "Normal"))
    ]  # fmt: skip


def rows(path, sep=","):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=sep))


def test_gazepoint_reduced(two, tmp_path) -> None:
    paths = write_gazepoint_csv(two[:1], tmp_path, reduced=True)
    for name in ("all_gaze", "fixations"):
        table = rows(paths[name])
        assert table[0] == [*GAZEPOINT_REDUCED_COLUMNS, ""]
        assert all(len(r) == 7 and r[-1] == "" for r in table)
    gaze, fix = rows(paths["all_gaze"])[1:], rows(paths["fixations"])[1:]
    assert len(gaze) == two[0].t.size and len(fix) == len(two[0].fixations)
    # A fixation's rows share TIME - FPOGD (its start); FPOGD grows along them.
    start = np.array([float(r[0]) - float(r[4]) for r in gaze if r[5] == "1"])
    assert len(np.unique(np.round(start, 4))) == len(fix)
    np.testing.assert_allclose([float(r[0]) - float(r[4]) for r in fix],
                               two[0].fixations.start_s, atol=2e-5)  # fmt: skip
    with pytest.raises(ValueError, match="one reading"):
        write_gazepoint_csv(two, tmp_path / "x", reduced=True)


def test_gazepoint_default_is_unchanged(two, tmp_path) -> None:
    a = write_gazepoint_csv(two, tmp_path / "a", seed=4)
    b = write_gazepoint_csv(two, tmp_path / "b", seed=4, reduced=False)
    for name in ("all_gaze", "fixations"):
        assert a[name].read_bytes() == b[name].read_bytes()
        assert a[name].read_text().splitlines()[0].startswith("MEDIA_ID,MEDIA_NAME,CNT,TIME(")


def test_tobii_calibration_screen(two, tmp_path) -> None:
    plain = write_tobii_pro_lab_tsv(two, tmp_path / "a" / "e.tsv", seed=2)
    again = write_tobii_pro_lab_tsv(two, tmp_path / "b" / "e.tsv", seed=2, calibration=False)
    assert plain["tsv"].read_bytes() == again["tsv"].read_bytes()
    assert CALIBRATION_STIMULUS not in plain["tsv"].read_text(encoding="utf-8")
    cal = write_tobii_pro_lab_tsv(two, tmp_path / "c" / "e.tsv", seed=2, calibration=True)
    table = rows(cal["tsv"], "\t")
    h = {n: i for i, n in enumerate(table[0])}
    stim = [r[h["Presented Stimulus name"]] for r in table[1:]]
    first_image = stim.index("img0")
    assert set(stim[:first_image]) == {"", CALIBRATION_STIMULUS}
    assert "Eye tracker Calibration start" in [r[h["Event"]] for r in table[1:first_image]]
    on_dots = [r for r in table[1:] if r[h["Presented Stimulus name"]] == CALIBRATION_STIMULUS]
    assert {r[h["Eye movement type index"]] for r in on_dots} == {
        str(i + 1) for i in range(len(CALIBRATION_DOTS))
    }
    assert all(r[h["Presented Media width [px]"]] == "" for r in on_dots)


def test_egd_cxr_pads_in_screen_pixels(two, tmp_path) -> None:
    plain = write_egd_cxr(two, tmp_path / "a", seed=1)
    again = write_egd_cxr(two, tmp_path / "b", seed=1, pad_convention="image_px")
    for name in ("fixations", "eye_gaze", "master_sheet"):
        assert plain[name].read_bytes() == again[name].read_bytes()
    screen = write_egd_cxr(two, tmp_path / "c", seed=1, pad_convention="screen_px")
    sheet = rows(screen["master_sheet"])
    h = {n: i for i, n in enumerate(sheet[0])}
    r = two[0]
    left, top, right, bottom = r.views[0].screen_rect
    row = next(s for s in sheet[1:] if s[h["dicom_id"]] == r.image_key)
    pads = [int(row[h[f"image_{k}_pad"]]) for k in ("top", "bottom", "left", "right")]
    assert pads == [round(top), round(1080 - bottom), round(left), round(1920 - right)]
    t, b, lft, rgt = pads
    fix = rows(screen["fixations"])
    f = {n: i for i, n in enumerate(fix[0])}
    for cells in fix[1:]:
        if cells[f["DICOM_ID"]] != r.image_key:
            continue
        ex, ey = float(cells[f["FPOGX"]]) * 1920, float(cells[f["FPOGY"]]) * 1080
        inside = lft < ex < 1920 - rgt and t < ey < 1080 - b
        want = (int(W / (1920 - lft - rgt) * (ex - lft)), int(H / (1080 - t - b) * (ey - t)))
        got = (int(cells[f["X_ORIGINAL"]]), int(cells[f["Y_ORIGINAL"]]))
        assert got == (want if inside else (-1, -1))
    with pytest.raises(ValueError, match="pad_convention"):
        write_egd_cxr(two, tmp_path / "d", pad_convention="mm")
