"""Tobii Pro Lab data export (TSV): one row per gaze sample, plus event and mouse rows.

Reproduced from a real export: the full column set with units in the names (``[ms]``, ``[μs]``,
``[DACS px]``, ``[MCS norm]``), recording metadata repeated on every row, decimal commas (a
European-locale export; ``decimal="."`` for an English one), ``Validity left/right`` =
Valid/Invalid, an I-VT label on every sample (``Eye movement type`` Fixation / Saccade /
EyesNotFound with its index and duration), ``Event`` rows (RecordingStart, ImageStimulusStart /
End naming the image), ``Sensor = Mouse`` rows mixed in, and the presented media's name, size and
position while an image is on screen.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import BLINK, FIXATION, Reading
from ml.synthetic.writers.truth import fixation_measured_positions, write_truth

__all__ = ["CALIBRATION_STIMULUS", "TOBII_PRO_LAB_COLUMNS", "write_tobii_pro_lab_tsv"]

_META = (
    "Project name",
    "Export date",
    "Participant name",
    "Recording name",
    "Recording date",
    "Recording date UTC",
    "Recording start time",
    "Recording start time UTC",
    "Recording duration [ms]",
    "Timeline name",
    "Recording Fixation filter name",
    "Recording software version",
    "Recording resolution height [px]",
    "Recording resolution width [px]",
    "Recording monitor latency [ms]",
    *[
        f"Average {p} {q} [{u}]"
        for p in ("calibration", "validation")
        for u in ("mm", "°", "px")
        for q in ("accuracy", "precision SD", "precision RMS")
    ],
)
TOBII_PRO_LAB_COLUMNS: tuple[str, ...] = (
    "Recording timestamp [ms]",
    "Computer timestamp [ms]",
    "Sensor",
    *_META,
    "Eyetracker timestamp [μs]",
    "Event",
    "Event value",
    "Gaze point X [DACS px]",
    "Gaze point Y [DACS px]",
    "Gaze point left X [DACS px]",
    "Gaze point left Y [DACS px]",
    "Gaze point right X [DACS px]",
    "Gaze point right Y [DACS px]",
    *[f"Gaze direction {e} {a} [DACS norm]" for e in ("left", "right") for a in "XYZ"],
    "Pupil diameter left [mm]",
    "Pupil diameter right [mm]",
    "Pupil diameter filtered [mm]",
    "Eye openness left [mm]",
    "Eye openness right [mm]",
    "Eye openness filtered [mm]",
    "Validity left",
    "Validity right",
    *[f"Eye position {e} {a} [DACS mm]" for e in ("left", "right") for a in "XYZ"],
    "Gaze point left X [DACS mm]",
    "Gaze point left Y [DACS mm]",
    "Gaze point right X [DACS mm]",
    "Gaze point right Y [DACS mm]",
    "Gaze point X [MCS norm]",
    "Gaze point Y [MCS norm]",
    "Gaze point left X [MCS norm]",
    "Gaze point left Y [MCS norm]",
    "Gaze point right X [MCS norm]",
    "Gaze point right Y [MCS norm]",
    "Presented Stimulus name",
    "Presented Media name",
    "Presented Media width [px]",
    "Presented Media height [px]",
    "Presented Media position X [DACS px]",
    "Presented Media position Y [DACS px]",
    "Original Media width [px]",
    "Original Media height [px]",
    "Eye movement type",
    "Eye movement event duration [ms]",
    "Eye movement type index",
    "Fixation point X [DACS px]",
    "Fixation point Y [DACS px]",
    "Fixation point X [MCS norm]",
    "Fixation point Y [MCS norm]",
    "Ungrouped",
    "Client area position X [px]",
    "Client area position Y [px]",
    "Viewport position X [px]",
    "Viewport position Y [px]",
    "Viewport width [px]",
    "Viewport height [px]",
    "Full page width [px]",
    "Full page height [px]",
    "Mouse position X [DACS px]",
    "Mouse position Y [DACS px]",
)
_INDEX = {c: i for i, c in enumerate(TOBII_PRO_LAB_COLUMNS)}
# Pro Lab's own calibration screen, as a real export names it, and where its dots are shown
# (fractions of the screen), each for CALIBRATION_DOT_MS.
CALIBRATION_STIMULUS = "Eyetracker Calibration"
CALIBRATION_DOTS = ((0.5, 0.5), (0.1, 0.1), (0.9, 0.1), (0.1, 0.9), (0.9, 0.9))
CALIBRATION_DOT_MS = 500.0


def write_tobii_pro_lab_tsv(
    readings: Sequence[Reading],
    path: str | Path,
    *,
    seed: int = 0,
    decimal: str = ",",
    participant: str | None = None,
    recorded_at: _dt.datetime | None = None,
    calibration: bool = False,
) -> dict[str, Path]:
    """Write readings (one recording, one image stimulus each) as a Tobii Pro Lab TSV export.

    ``calibration=True`` starts the recording with Pro Lab's own calibration screen, as a real
    export has it: an ``Eye tracker Calibration start`` event, then samples whose ``Presented
    Stimulus name`` is ``Eyetracker Calibration`` (no media columns), the gaze fixating
    :data:`CALIBRATION_DOTS` one after the other; the images follow.

    Args:
        readings: in presentation order, all by one reader.
        path: the .tsv file.
        seed: seeds the clocks, the binocular disparity and the mouse.
        decimal: decimal separator ("," as a European-locale export writes, or ".").
        participant: Participant name; default the reader's name.
        recorded_at: recording start; default from the seed.
        calibration: write the calibration screen first.

    Returns:
        {"tsv": path, "truth": path}.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 17])
    start = recorded_at or _dt.datetime(2024, 3, 1, 9, 0, 0) + _dt.timedelta(
        seconds=int(rng.integers(0, 300 * 86400)), milliseconds=int(rng.integers(0, 1000))
    )
    geo = readings[0].geometry
    W, H = geo.screen_width_px, geo.screen_height_px
    mm_x, mm_y = geo.screen_width_mm / W, geo.screen_height_mm / H
    ppd = geo.pixels_per_degree()

    def num(v: float, places: int) -> str:
        return f"{v:.{places}f}".replace(".", decimal)

    gap_ms = 1500.0
    offsets, t_ms = [], 800.0
    calibration_at = t_ms
    if calibration:
        t_ms += len(CALIBRATION_DOTS) * CALIBRATION_DOT_MS + gap_ms
    for r in readings:
        offsets.append(t_ms)
        t_ms += r.duration_s * 1000.0 + gap_ms
    duration_ms = int(t_ms)
    off = readings[0].calibration_offset_px
    acc_px = float(np.hypot(*off))
    acc_deg = acc_px / ppd[0]
    meta = [
        "Radiology reading",
        f"{start + _dt.timedelta(days=2):%d.%m.%Y}",
        participant or readings[0].reader.name,
        f"{(participant or readings[0].reader.name)}1",
        f"{start:%d.%m.%Y}",
        f"{start:%d.%m.%Y}",
        f"{start:%H:%M:%S}.{start.microsecond // 1000:03d}",
        f"{start - _dt.timedelta(hours=1):%H:%M:%S}.{start.microsecond // 1000:03d}",
        str(duration_ms),
        "Timeline1",
        "Tobii I-VT (Fixation)",
        "24.21.435",
        str(H),
        str(W),
        num(10.0, 2),
        num(acc_px * mm_x, 1),
        num(0.6, 1),
        num(0.5, 1),
        num(acc_deg, 2),
        num(0.06, 2),
        num(0.05, 2),
        str(int(round(acc_px))),
        "2",
        "2",
        num(acc_px * mm_x * 1.1, 1),
        num(0.7, 1),
        num(0.5, 1),
        num(acc_deg * 1.1, 2),
        num(0.07, 2),
        num(0.05, 2),
        str(int(round(acc_px * 1.1))),
        "2",
        "2",
    ]
    computer0 = int(rng.integers(1_000_000, 9_000_000))
    tracker0 = int(rng.integers(10**9, 9 * 10**9))
    rows: list[list[str]] = []

    def blank(ms: float) -> list[str]:
        row = [""] * len(TOBII_PRO_LAB_COLUMNS)
        row[0] = str(int(round(ms)))
        row[1] = str(computer0 + int(round(ms)))
        row[3 : 3 + len(_META)] = meta
        return row

    def event(ms: float, name: str, value: str = "") -> None:
        row = blank(ms)
        row[_INDEX["Event"]] = name
        row[_INDEX["Event value"]] = value
        rows.append(row)

    event(0.0, "RecordingStart")
    extras = []
    disparity = rng.normal(0, 6.0, 2)
    if calibration:
        event(calibration_at, "Eye tracker Calibration start")
        step = 1000.0 / readings[0].rate_hz
        n_dot = int(round(CALIBRATION_DOT_MS / step))
        for d, (fx_, fy_) in enumerate(CALIBRATION_DOTS):
            for j in range(n_dot):
                ms = calibration_at + (d * n_dot + j) * step
                row = blank(ms)
                row[2] = "Eye Tracker"
                row[_INDEX["Eyetracker timestamp [μs]"]] = str(tracker0 + int(round(ms * 1000)))
                gx = fx_ * W + off[0] + rng.normal(0, 3.0)
                gy = fy_ * H + off[1] + rng.normal(0, 3.0)
                row[_INDEX["Gaze point X [DACS px]"]] = str(int(round(gx)))
                row[_INDEX["Gaze point Y [DACS px]"]] = str(int(round(gy)))
                row[_INDEX["Validity left"]] = row[_INDEX["Validity right"]] = "Valid"
                row[_INDEX["Presented Stimulus name"]] = CALIBRATION_STIMULUS
                row[_INDEX["Eye movement type"]] = "Fixation"
                row[_INDEX["Eye movement event duration [ms]"]] = str(int(round(n_dot * step)))
                row[_INDEX["Eye movement type index"]] = str(d + 1)
                row[_INDEX["Fixation point X [DACS px]"]] = str(int(round(fx_ * W + off[0])))
                row[_INDEX["Fixation point Y [DACS px]"]] = str(int(round(fy_ * H + off[1])))
                rows.append(row)
        event(
            calibration_at + len(CALIBRATION_DOTS) * CALIBRATION_DOT_MS,
            "Eye tracker Calibration end",
        )
    for r, t_off in zip(readings, offsets, strict=True):
        v = r.views[0]
        rect = [int(round(c)) for c in v.screen_rect]
        media = f"{r.image_key}.png"
        event(t_off, "ImageStimulusStart", r.image_key)
        fx, fy = fixation_measured_positions(r)
        ftype = np.where(
            r.event == FIXATION, "Fixation", np.where(r.event == BLINK, "EyesNotFound", "Saccade")
        )
        ftype = np.where(~r.valid, "EyesNotFound", ftype)
        # I-VT labels: runs of one type, each with its index (per type) and duration.
        change = np.r_[True, ftype[1:] != ftype[:-1]]
        run_id = np.cumsum(change) - 1
        run_start = np.flatnonzero(change)
        run_len = np.diff(np.r_[run_start, ftype.size])
        type_counts: dict[str, int] = {}
        run_index = []
        for s in run_start:
            type_counts[ftype[s]] = type_counts.get(ftype[s], 0) + 1
            run_index.append(type_counts[ftype[s]])
        step = 1000.0 / r.rate_hz
        next_mouse = 0.0
        for i in range(r.t.size):
            ms = t_off + r.t[i] * 1000.0
            if ms >= next_mouse:
                row = blank(ms)
                row[2] = "Mouse"
                row[_INDEX["Mouse position X [DACS px]"]] = str(int(W * 0.9 + rng.integers(0, 40)))
                row[_INDEX["Mouse position Y [DACS px]"]] = str(int(H * 0.85 + rng.integers(0, 40)))
                rows.append(row)
                next_mouse = ms + 500.0
            row = blank(ms)
            row[2] = "Eye Tracker"
            row[_INDEX["Eyetracker timestamp [μs]"]] = str(tracker0 + int(round(ms * 1000)))
            ok = bool(r.valid[i])
            row[_INDEX["Validity left"]] = "Valid" if ok else "Invalid"
            row[_INDEX["Validity right"]] = "Valid" if ok else "Invalid"
            if ok:
                gx, gy = r.x[i], r.y[i]
                lx, ly = gx + disparity[0], gy + disparity[1]
                rx, ry = gx - disparity[0], gy - disparity[1]
                row[_INDEX["Gaze point X [DACS px]"]] = str(int(round(gx)))
                row[_INDEX["Gaze point Y [DACS px]"]] = str(int(round(gy)))
                for name, val in (("left X", lx), ("left Y", ly), ("right X", rx), ("right Y", ry)):
                    row[_INDEX[f"Gaze point {name} [DACS px]"]] = num(val, 1)
                    mm = val * (mm_x if name.endswith("X") else mm_y)
                    row[_INDEX[f"Gaze point {name} [DACS mm]"]] = num(mm, 1)
                for eye, ex, ey in (("left", lx, ly), ("right", rx, ry)):
                    dx = (ex - W / 2) * mm_x - (-32.0 if eye == "left" else 32.0)
                    dy = (ey - H / 2) * mm_y
                    d = np.array([dx, -dy, -geo.viewing_distance_mm])
                    d /= np.linalg.norm(d)
                    for a, val in zip("XYZ", d, strict=True):
                        row[_INDEX[f"Gaze direction {eye} {a} [DACS norm]"]] = num(val, 5)
                    ex_mm = (W / 2) * mm_x + (-32.0 if eye == "left" else 32.0)
                    for a, val in zip("XYZ", (ex_mm, 90.0, geo.viewing_distance_mm), strict=True):
                        row[_INDEX[f"Eye position {eye} {a} [DACS mm]"]] = num(val, 1)
                p = r.pupil_mm[i]
                row[_INDEX["Pupil diameter left [mm]"]] = num(p - 0.03, 3)
                row[_INDEX["Pupil diameter right [mm]"]] = num(p + 0.03, 3)
                row[_INDEX["Pupil diameter filtered [mm]"]] = num(p, 3)
                for eye in ("left", "right", "filtered"):
                    row[_INDEX[f"Eye openness {eye} [mm]"]] = num(9.5 + 0.3 * np.sin(i / 7.0), 3)
                mcs_x = (gx - rect[0]) / (rect[2] - rect[0])
                mcs_y = (gy - rect[1]) / (rect[3] - rect[1])
                row[_INDEX["Gaze point X [MCS norm]"]] = num(mcs_x, 4)
                row[_INDEX["Gaze point Y [MCS norm]"]] = num(mcs_y, 4)
                for eye, ex, ey in (("left", lx, ly), ("right", rx, ry)):
                    row[_INDEX[f"Gaze point {eye} X [MCS norm]"]] = num(
                        (ex - rect[0]) / (rect[2] - rect[0]), 4
                    )
                    row[_INDEX[f"Gaze point {eye} Y [MCS norm]"]] = num(
                        (ey - rect[1]) / (rect[3] - rect[1]), 4
                    )
            row[_INDEX["Presented Stimulus name"]] = r.image_key
            row[_INDEX["Presented Media name"]] = media
            row[_INDEX["Presented Media width [px]"]] = str(rect[2] - rect[0])
            row[_INDEX["Presented Media height [px]"]] = str(rect[3] - rect[1])
            row[_INDEX["Presented Media position X [DACS px]"]] = str(rect[0])
            row[_INDEX["Presented Media position Y [DACS px]"]] = str(rect[1])
            row[_INDEX["Original Media width [px]"]] = str(r.image_width)
            row[_INDEX["Original Media height [px]"]] = str(r.image_height)
            run = run_id[i]
            row[_INDEX["Eye movement type"]] = str(ftype[i])
            row[_INDEX["Eye movement event duration [ms]"]] = str(int(round(run_len[run] * step)))
            row[_INDEX["Eye movement type index"]] = str(run_index[run])
            k = r.fixation_index[i]
            if ftype[i] == "Fixation" and k >= 0 and np.isfinite(fx[k]):
                row[_INDEX["Fixation point X [DACS px]"]] = str(int(round(fx[k])))
                row[_INDEX["Fixation point Y [DACS px]"]] = str(int(round(fy[k])))
                row[_INDEX["Fixation point X [MCS norm]"]] = num(
                    (fx[k] - rect[0]) / (rect[2] - rect[0]), 4
                )
                row[_INDEX["Fixation point Y [MCS norm]"]] = num(
                    (fy[k] - rect[1]) / (rect[3] - rect[1]), 4
                )
            rows.append(row)
        event(t_off + r.duration_s * 1000.0, "ImageStimulusEnd", r.image_key)
        extras.append({"recording_timestamp_ms_at_first_sample": t_off, "media_name": media})
    event(float(duration_ms), "RecordingEnd")
    text = "\t".join(TOBII_PRO_LAB_COLUMNS) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    truth = write_truth(
        readings,
        path.with_name("truth.json"),
        fmt="tobii_pro_lab_tsv",
        extras=extras,
        notes={
            "positions": "Gaze point X/Y [DACS px]: screen pixels, origin top-left (the mean of "
            "both eyes); [MCS norm]: 0-1 within the presented media",
            "time": "Recording timestamp [ms] from the recording start; reading time t = "
            "(timestamp - recording_timestamp_ms_at_first_sample) / 1000",
            "decimal": decimal,
        },
    )
    return {"tsv": path, "truth": truth}
