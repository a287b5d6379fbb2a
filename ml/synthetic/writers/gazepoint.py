"""Gazepoint Analysis CSV export (all_gaze.csv and fixations.csv), and the per-sample fields that
EGD-CXR shares with it.

Gazepoint semantics reproduced here: FPOG* describe the current fixation on every sample (its
running mean position, start FPOGS and duration so far FPOGD, id FPOGID, FPOGV = 1 while it lasts;
after it ends the samples keep its final values with FPOGV = 0); BPOG* is the raw point of gaze;
positions are fractions of the screen with (0, 0) top-left; a fixations.csv row is the sample that
closed the fixation, so TIME = FPOGS + FPOGD there.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import BLINK, Reading
from ml.synthetic.writers.truth import fixation_measured_positions, write_truth

__all__ = [
    "GAZEPOINT_COLUMNS",
    "GAZEPOINT_REDUCED_COLUMNS",
    "GazepointFields",
    "gazepoint_fields",
    "write_gazepoint_csv",
]

# Gazepoint Analysis 6.x "all gaze" columns after MEDIA_ID, MEDIA_NAME, CNT, TIME(...), TIMETICK.
GAZEPOINT_COLUMNS: tuple[str, ...] = (
    "MEDIA_ID",
    "MEDIA_NAME",
    "CNT",
    "TIME",
    "TIMETICK(f=10000000)",
    "FPOGX",
    "FPOGY",
    "FPOGS",
    "FPOGD",
    "FPOGID",
    "FPOGV",
    "BPOGX",
    "BPOGY",
    "BPOGV",
    "CX",
    "CY",
    "CS",
    "USER",
    "LPCX",
    "LPCY",
    "LPD",
    "LPS",
    "LPV",
    "RPCX",
    "RPCY",
    "RPD",
    "RPS",
    "RPV",
    "BKID",
    "BKDUR",
    "BKPMIN",
    "LPMM",
    "LPMMV",
    "RPMM",
    "RPMMV",
    "DIAL",
    "DIALV",
    "GSR",
    "GSRV",
    "HR",
    "HRV",
    "HRP",
    "TTL0",
    "TTL1",
    "TTLV",
    "PIXS",
    "PIXV",
    "AOI",
    "SACCADE_MAG",
    "SACCADE_DIR",
    "VID_FRAME",
)


# The reduced column set a Gazepoint Analysis 6.x user may export (columns ticked in the export
# dialog): no MEDIA_ID/MEDIA_NAME, no FPOGID/FPOGS, no BPOG*; TIME and TIMETICK without their
# parenthesised suffixes, and still a trailing comma on every line.
GAZEPOINT_REDUCED_COLUMNS: tuple[str, ...] = (
    "TIME",
    "TIMETICK",
    "FPOGX",
    "FPOGY",
    "FPOGD",
    "FPOGV",
)


@dataclass(frozen=True)
class GazepointFields:
    """Per-sample Gazepoint fields of one reading (arrays of length N), plus fixation rows.

    ``fix_*`` arrays hold one entry per true fixation: the values of its fixations.csv row.
    """

    samples: dict[str, np.ndarray]
    fix: dict[str, np.ndarray]


def gazepoint_fields(reading: Reading, *, seed: int = 0) -> GazepointFields:
    """Compute Gazepoint's per-sample and per-fixation fields for a reading.

    Args:
        reading: the reading.
        seed: seeds the small eye-camera details (pupil centres in the camera image).

    Returns:
        GazepointFields.
    """
    rng = np.random.default_rng([seed, reading.t.size, 31])
    n = reading.t.size
    W, H = reading.geometry.screen_width_px, reading.geometry.screen_height_px
    f = reading.fixations
    mx, my = fixation_measured_positions(reading)
    # A fixation whose samples were all lost keeps its true position (Gazepoint would drop it;
    # the truth keeps it, so do we).
    mx = np.where(np.isnan(mx), f.screen_x + reading.calibration_offset_px[0], mx)
    my = np.where(np.isnan(my), f.screen_y + reading.calibration_offset_px[1], my)

    fpogx, fpogy = np.zeros(n), np.zeros(n)
    fpogs, fpogd = np.zeros(n), np.zeros(n)
    fpogid = np.ones(n, dtype=np.int64)
    fpogv = np.zeros(n, dtype=np.int64)
    x = np.nan_to_num(reading.x, nan=0.0)
    y = np.nan_to_num(reading.y, nan=0.0)
    for k in range(len(f)):
        a, m = int(f.first_sample[k]), int(f.n_samples[k])
        ok = reading.valid[a : a + m].astype(float)
        count = np.maximum(np.cumsum(ok), 1)
        run_x = np.cumsum(x[a : a + m] * ok) / count
        run_y = np.cumsum(y[a : a + m] * ok) / count
        run_x[np.cumsum(ok) == 0] = mx[k]
        run_y[np.cumsum(ok) == 0] = my[k]
        end = int(f.first_sample[k + 1]) if k + 1 < len(f) else n
        fpogx[a : a + m], fpogy[a : a + m] = run_x / W, run_y / H
        fpogs[a:end] = f.start_s[k]
        fpogd[a : a + m] = reading.t[a : a + m] - f.start_s[k]
        fpogid[a:end] = k + 1
        fpogv[a : a + m] = 1
        # After the fixation: its final values, flagged invalid, until the next one starts.
        fpogx[a + m : end], fpogy[a + m : end] = mx[k] / W, my[k] / H
        fpogd[a + m : end] = f.duration_s[k]

    valid = reading.valid
    vi = valid.astype(np.int64)
    pupil = np.nan_to_num(reading.pupil_mm, nan=0.0)
    blink = reading.event == BLINK
    starts = np.flatnonzero(blink & ~np.r_[False, blink[:-1]])
    ends = np.flatnonzero(blink & ~np.r_[blink[1:], False])
    bkid = np.zeros(n, dtype=np.int64)
    bkdur = np.zeros(n)
    for j, (s, e) in enumerate(zip(starts, ends, strict=True)):
        bkid[s : e + 1] = j + 1
        if e + 1 < n:
            bkdur[e + 1] = (e + 1 - s) / reading.rate_hz
    blink_times = reading.t[starts]
    window = np.searchsorted(blink_times, reading.t, side="right") - np.searchsorted(
        blink_times, reading.t - 60.0, side="right"
    )
    elapsed_min = np.maximum(reading.t, 1.0) / 60.0
    bkpmin = np.rint(window / np.minimum(elapsed_min, 1.0)).astype(np.int64)

    def camera(center: float, spread: float) -> np.ndarray:
        return (center + spread * np.cumsum(rng.normal(0, 0.02, n)) / math.sqrt(n)) * vi

    samples = {
        "FPOGX": fpogx,
        "FPOGY": fpogy,
        "FPOGS": fpogs,
        "FPOGD": fpogd,
        "FPOGID": fpogid,
        "FPOGV": fpogv,
        "BPOGX": x / W * vi,
        "BPOGY": y / H * vi,
        "BPOGV": vi,
        "LPCX": camera(0.378, 1.0),
        "LPCY": camera(0.594, 1.0),
        "LPD": (pupil * 5.1 + rng.normal(0, 0.15, n)) * vi,
        "LPS": (1.05 + rng.normal(0, 0.01, n)) * vi,
        "LPV": vi,
        "RPCX": camera(0.637, 1.0),
        "RPCY": camera(0.598, 1.0),
        "RPD": (pupil * 5.0 + rng.normal(0, 0.15, n)) * vi,
        "RPS": (1.06 + rng.normal(0, 0.01, n)) * vi,
        "RPV": vi,
        "BKID": bkid,
        "BKDUR": bkdur,
        "BKPMIN": bkpmin,
        "LPMM": (pupil - 0.03) * vi,
        "LPMMV": vi,
        "RPMM": (pupil + 0.03) * vi,
        "RPMMV": vi,
    }

    closing = f.first_sample + f.n_samples
    close_idx = np.minimum(closing, n - 1)
    dx = np.diff(mx, prepend=mx[0])
    dy = np.diff(my, prepend=my[0])
    fix = {
        "CNT": closing.astype(np.int64),
        "TIME": f.start_s + f.duration_s,
        "FPOGX": mx / W,
        "FPOGY": my / H,
        "FPOGS": f.start_s.astype(float),
        "FPOGD": f.duration_s.astype(float),
        "FPOGID": np.arange(1, len(f) + 1),
        "FPOGV": np.ones(len(f), dtype=np.int64),
        "SACCADE_MAG": np.hypot(dx, dy),
        "SACCADE_DIR": np.degrees(np.arctan2(-dy, dx)) % 360.0,
        "close_index": close_idx,
    }
    return GazepointFields(samples=samples, fix=fix)


def _f5(v: float) -> str:
    return f"{v:.5f}"


_INT_FIELDS = {"FPOGID", "FPOGV", "BPOGV", "LPV", "RPV", "BKID", "BKPMIN", "LPMMV", "RPMMV"}
_ZERO_FIELDS = {"CS", "DIALV", "GSR", "GSRV", "HR", "HRV", "HRP", "TTLV", "PIXV", "VID_FRAME"}


def _line(head: list[str], values: dict) -> str:
    """One Gazepoint line: the first five cells, then every other column, and a trailing comma."""
    cells = list(head)
    for c in GAZEPOINT_COLUMNS[5:]:
        if c in values:
            v = values[c]
            cells.append(str(int(v)) if c in _INT_FIELDS else _f5(float(v)))
        elif c in ("CX", "CY"):
            cells.append("0.50000")  # the mouse cursor rests mid-screen
        elif c in _ZERO_FIELDS:
            cells.append("0")
        elif c in ("TTL0", "TTL1"):
            cells.append("1")
        elif c in ("USER", "AOI"):
            cells.append("")
        else:
            cells.append("0.00000")
    return ",".join(cells) + ",\n"


def write_gazepoint_csv(
    readings: Sequence[Reading],
    out_dir: str | Path,
    *,
    user: str = "User1",
    seed: int = 0,
    recorded_at: _dt.datetime | None = None,
    reduced: bool = False,
) -> dict[str, Path]:
    """Write a Gazepoint Analysis export: ``<user>_all_gaze.csv`` and ``<user>_fixations.csv``.

    One media per reading (MEDIA_NAME is the image key), TIME in seconds restarting at each media,
    TIMETICK in 10 MHz ticks running on, five-decimal values and a trailing comma on every line.

    ``reduced=True`` writes Gazepoint Analysis 6.x's reduced export instead: the header is exactly
    ``TIME,TIMETICK,FPOGX,FPOGY,FPOGD,FPOGV,`` (:data:`GAZEPOINT_REDUCED_COLUMNS`), so the files
    name no media (one reading only) and no fixation id; between fixations (FPOGV = 0) FPOGX/FPOGY
    follow the raw gaze, off-screen values included, as the real exports do, while FPOGD keeps
    the last fixation's duration.

    Args:
        readings: one per media, in presentation order.
        out_dir: folder to write into (created).
        user: the participant name in the file names.
        seed: seeds the session clock and the eye-camera details.
        recorded_at: the session start written in the TIME(...) header; default from the seed.
        reduced: write the reduced 6.x column set (one reading).

    Returns:
        {"all_gaze": path, "fixations": path, "truth": path}.
    """
    if reduced:
        return _write_reduced(readings, Path(out_dir), user=user, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 5])
    start = recorded_at or _dt.datetime(2022, 1, 1, 9, 0, 0) + _dt.timedelta(
        seconds=int(rng.integers(0, 365 * 86400)), milliseconds=int(rng.integers(0, 1000))
    )
    time_col = f"TIME({start:%Y/%m/%d %H:%M:%S}.{start.microsecond // 1000:03d})"
    header = ",".join(time_col if c == "TIME" else c for c in GAZEPOINT_COLUMNS) + ",\n"
    tick0 = int(rng.integers(10**12, 4 * 10**12))
    offset_s = 0.0
    cnt0 = 0
    extras = []
    gaze_lines, fix_lines = [header], [header]
    for media_id, r in enumerate(readings):
        gf = gazepoint_fields(r, seed=seed + media_id)
        s = gf.samples
        ticks = tick0 + np.rint((offset_s + r.t) * 1e7).astype(np.int64)

        def line(
            i: int,
            over: dict | None = None,
            cnt: int | None = None,
            time: float | None = None,
            tick: int | None = None,
            *,
            s: dict = s,
            r: Reading = r,
            media_id: int = media_id,
            cnt0: int = cnt0,
            ticks: np.ndarray = ticks,
        ) -> str:
            values = {k: s[k][i] for k in s}
            if over:
                values.update(over)
            head = [
                str(media_id),
                r.image_key,
                str(cnt if cnt is not None else cnt0 + i),
                _f5(time if time is not None else r.t[i]),
                str(tick if tick is not None else ticks[i]),
            ]
            return _line(head, values)

        gaze_lines += [line(i) for i in range(r.t.size)]
        fx = gf.fix
        for k in range(len(r.fixations)):
            ci = int(fx["close_index"][k])
            over = {
                c: fx[c][k]
                for c in (
                    "FPOGX",
                    "FPOGY",
                    "FPOGS",
                    "FPOGD",
                    "FPOGID",
                    "FPOGV",
                    "SACCADE_MAG",
                    "SACCADE_DIR",
                )
            }
            t_close = float(fx["TIME"][k])
            fix_lines.append(
                line(
                    ci,
                    over,
                    cnt=cnt0 + int(fx["CNT"][k]),
                    time=t_close,
                    tick=tick0 + int(round((offset_s + t_close) * 1e7)),
                )
            )
        extras.append(
            {
                "media_id": media_id,
                "media_name": r.image_key,
                "first_cnt": cnt0,
                "timetick_at_media_start": int(ticks[0]),
            }
        )
        cnt0 += r.t.size
        offset_s += r.duration_s + 1.5  # the next image follows after a short pause
    paths = {
        "all_gaze": out_dir / f"{user}_all_gaze.csv",
        "fixations": out_dir / f"{user}_fixations.csv",
    }
    paths["all_gaze"].write_text("".join(gaze_lines), encoding="utf-8")
    paths["fixations"].write_text("".join(fix_lines), encoding="utf-8")
    paths["truth"] = write_truth(
        readings,
        out_dir / "truth.json",
        fmt="gazepoint_csv",
        extras=extras,
        notes={
            "positions": "FPOG*/BPOG* are fractions of the screen, origin top-left",
            "time": "TIME restarts at each media (s); TIMETICK is 10 MHz ticks",
            "fixation_row": "the sample closing the fixation: TIME = FPOGS + FPOGD",
        },
    )
    return paths


def _write_reduced(
    readings: Sequence[Reading], out_dir: Path, *, user: str, seed: int
) -> dict[str, Path]:
    """The reduced 6.x export of one reading (see :func:`write_gazepoint_csv`)."""
    if len(readings) != 1:
        raise ValueError("a reduced Gazepoint export names no media: write one reading per file")
    (r,) = readings
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 5])
    tick0 = int(rng.integers(10**12, 4 * 10**12))
    gf = gazepoint_fields(r, seed=seed)
    s, fx = gf.samples, gf.fix
    ticks = tick0 + np.rint(r.t * 1e7).astype(np.int64)
    W, H = r.geometry.screen_width_px, r.geometry.screen_height_px
    # Between fixations the real exports' FPOG follows the gaze (FPOGD stays put).
    between = s["FPOGV"] == 0
    raw_x = np.where(r.valid, np.nan_to_num(r.x) / W, 0.0)
    raw_y = np.where(r.valid, np.nan_to_num(r.y) / H, 0.0)
    fpogx = np.where(between, raw_x, s["FPOGX"])
    fpogy = np.where(between, raw_y, s["FPOGY"])

    def line(time: float, tick: int, x: float, y: float, d: float, v: int) -> str:
        return f"{_f5(time)},{tick},{_f5(x)},{_f5(y)},{_f5(d)},{int(v)},\n"

    header = ",".join(GAZEPOINT_REDUCED_COLUMNS) + ",\n"
    gaze = [header] + [
        line(r.t[i], ticks[i], fpogx[i], fpogy[i], s["FPOGD"][i], s["FPOGV"][i])
        for i in range(r.t.size)
    ]
    fix = [header] + [
        line(
            fx["TIME"][k], tick0 + int(round(fx["TIME"][k] * 1e7)), fx["FPOGX"][k],
            fx["FPOGY"][k], fx["FPOGD"][k], 1,
        )
        for k in range(len(r.fixations))
    ]  # fmt: skip
    paths = {
        "all_gaze": out_dir / f"{user}_all_gaze.csv",
        "fixations": out_dir / f"{user}_fixations.csv",
    }
    paths["all_gaze"].write_text("".join(gaze), encoding="utf-8")
    paths["fixations"].write_text("".join(fix), encoding="utf-8")
    paths["truth"] = write_truth(
        readings,
        out_dir / "truth.json",
        fmt="gazepoint_csv_reduced",
        extras=[{"media_name": None, "timetick_at_media_start": int(ticks[0])}],
        notes={
            "columns": ",".join(GAZEPOINT_REDUCED_COLUMNS) + ", (Gazepoint Analysis 6.x)",
            "positions": "FPOG* are fractions of the screen, origin top-left; off-screen values "
            "(< 0, > 1) between fixations",
            "fixations": "no FPOGID: a fixation is a run of FPOGV = 1 rows sharing TIME - FPOGD",
            "fixation_row": "the sample closing the fixation: TIME = FPOGS + FPOGD",
        },
    )
    return paths
