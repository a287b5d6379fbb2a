"""No silent loss: an EGD-CXR fixations.csv with a NUL byte in one DICOM_ID cell. The row is read
(on the fast and on the careful CSV path alike), its damaged id is a stimulus of its own (not a
calibration screen, although master_sheet.csv lacks it), reported with its line, and the analysis
accounts for every parsed fixation: kept in a reading, or dropped with the reason and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.gaze import GazeFormatError, read_recording
from ml.gaze.analysis import ReadingSetup, analyse_recording
from ml.gaze.formats import _csv
from ml.gaze.formats._labels import printable
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_egd_cxr

H, W = 300, 250
SETUP = ReadingSetup(screen_px=(1920, 1080), screen_mm=(531.0, 299.0), distance_mm=650.0)


def key(i: int, label: str) -> str:
    return f"{i:08x}-cafe0000-00000000-00000000-{label.lower():0>8}"


@pytest.fixture(scope="module")
def egd(tmp_path_factory) -> dict[str, Path]:
    reader = Radiologist(name="R1", n_fixations=12)
    readings = [
        simulate_reading(
            make_phantom(label, seed=i + 1, height=H, width=W), reader, rate_hz=60, seed=i,
            image_key=key(i, label),
        )
        for i, label in enumerate(("CHF", "Pneumonia", "Normal"))
    ]  # fmt: skip
    return write_egd_cxr(readings, tmp_path_factory.mktemp("egd"), calibration_every=2)


def with_nul(src: Path, dst: Path, *, from_end: int = 6) -> tuple[Path, int, str]:
    """``src`` with a NUL byte inside the DICOM_ID cell of an image's row near its end.

    Returns:
        (the file, the 1-based line of the damaged row, the damaged id).
    """
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    k = len(lines) - from_end
    cells = lines[k].split(",")
    assert "cafe0000" in cells[2]  # an image's row, not a calibration screen's
    cells[2] = cells[2][:4] + "\x00" + cells[2][4:]
    lines[k] = ",".join(cells)
    dst.write_text("".join(lines), encoding="utf-8")
    assert dst.read_bytes().index(b"\x00") > 4096  # past what format detection looks at
    return dst, k + 1, cells[2]


@pytest.fixture(params=["fast", "careful"])
def path_kind(request, monkeypatch) -> str:
    """Every test runs on the fast CSV path (pyarrow/numpy) and on the csv-module path."""
    monkeypatch.setattr(_csv, "FAST_CSV", request.param == "fast")
    return request.param


def images() -> dict[str, tuple[int, int]]:
    return {key(i, label): (W, H) for i, label in enumerate(("CHF", "Pneumonia", "Normal"))}


def test_nul_in_a_dicom_id_is_read_reported_and_accounted_for(egd, tmp_path, path_kind) -> None:
    path, line, damaged = with_nul(egd["fixations"], tmp_path / "fixations.csv")
    rows = len(path.read_text(encoding="utf-8").splitlines()) - 1
    rec = read_recording(str(path), master_sheet=str(egd["master_sheet"]))
    assert rec.format == "egd_cxr_fixations"
    assert len(rec.fixations) == rows  # every row parsed, the damaged one included
    [bad] = [s for s in rec.stimuli if "\x00" in s.name]
    assert bad.name == damaged and bad.line == line
    assert bad.source != "calibration"  # absent from master_sheet.csv, yet no calibration screen
    assert damaged not in rec.meta["calibration_screens"]
    assert any(f"line {line}" in w and "control character" in w for w in rec.warnings)

    out = analyse_recording(rec, SETUP, images=images())
    kept = sum(len(r.duration) for r in out.readings)
    dropped = out.quality["dropped"]
    assert out.quality["fixations_parsed"] == rows
    assert out.quality["fixations_kept"] == kept
    assert kept + dropped["count"] == rows  # stored + dropped = parsed: nothing silent
    assert dropped["by_reason"]["matched no image"] == 1
    [lost] = [d for d in dropped["stimuli"] if d["reason"] == "matched no image"]
    assert lost == {
        "stimulus": printable(damaged), "line": line, "fixations": 1, "reason": "matched no image"
    }  # fmt: skip
    assert "\\x00" in lost["stimulus"] and "\x00" not in lost["stimulus"]
    assert out.unmatched == [printable(damaged)]
    assert any(f"line {line}" in w for w in out.warnings)
    # The calibration screens' fixations are dropped too, and said so.
    n_cal = sum(1 for s in rec.stimuli if s.source == "calibration")
    assert dropped["by_reason"]["calibration screen"] == n_cal


def test_nul_in_eye_gaze_is_accounted_for(egd, tmp_path, path_kind) -> None:
    path, line, damaged = with_nul(egd["eye_gaze"], tmp_path / "eye_gaze.csv", from_end=40)
    rec = read_recording(str(path), master_sheet=str(egd["master_sheet"]))
    assert rec.format == "egd_cxr_eye_gaze"
    assert len(rec.samples) == len(path.read_text(encoding="utf-8").splitlines()) - 1
    assert any(f"line {line}" in w for w in rec.warnings)
    out = analyse_recording(rec, SETUP, images=images())
    kept = sum(len(r.duration) for r in out.readings)
    assert kept + out.quality["dropped"]["count"] == len(rec.fixations)
    assert out.unmatched == [printable(damaged)]


def test_fast_and_careful_paths_agree_on_the_damaged_file(egd, tmp_path, monkeypatch) -> None:
    path, _, _ = with_nul(egd["fixations"], tmp_path / "fixations.csv")
    got = []
    for fast in (True, False):
        monkeypatch.setattr(_csv, "FAST_CSV", fast)
        rec = read_recording(str(path), master_sheet=str(egd["master_sheet"]))
        out = analyse_recording(rec, SETUP, images=images())
        got.append((len(rec.fixations), rec.warnings, out.unmatched, out.quality["dropped"]))
    assert got[0] == got[1]


def test_nul_in_the_first_bytes_is_refused_with_its_line(egd, tmp_path) -> None:
    lines = egd["fixations"].read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace("cafe", "ca\x00fe", 1)
    path = tmp_path / "fixations.csv"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(GazeFormatError, match=r"line 3: binary content .*NUL"):
        read_recording(str(path), master_sheet=str(egd["master_sheet"]))
