"""EyeLink ASC export (what ``edf2asc`` writes): one session, one trial per reading, left eye.

Reproduced from real files: the ``**`` header with the conversion and DATE lines, DISPLAY_COORDS
(inclusive: right = width - 1), calibration and validation messages (the validation reports the
reader's calibration offset), per trial TRIALID, ``!V IMGLOAD CENTER`` naming the image and
``!V TRIAL_VAR`` lines, START / PRESCALER / VPRESCALER / PUPIL / EVENTS / SAMPLES lines with the
rate, sample lines ``time  x  y  pupil  flags`` (``.`` for a lost position, pupil 0.0, flags
``.C.``), SFIX/EFIX, SSACC/ESACC (blinks nested inside a saccade, as the EyeLink parser reports
them), SBLINK/EBLINK and END with the resolution in pixels per degree. An event's duration
includes one sample interval. Times are integer milliseconds on the tracker clock (one decimal
at 2 kHz).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import FIXATION, Reading
from ml.synthetic.writers.truth import write_truth

__all__ = ["pupil_area", "write_eyelink_asc"]


def pupil_area(pupil_mm: np.ndarray) -> np.ndarray:
    """EyeLink's arbitrary pupil-area units for a diameter in mm (about 850 at 3.5 mm)."""
    return np.nan_to_num(pupil_mm, nan=0.0) ** 2 * 70.0


def write_eyelink_asc(
    readings: Sequence[Reading],
    path: str | Path,
    *,
    seed: int = 0,
    image_dir: str = "images",
    recorded_at: _dt.datetime | None = None,
) -> dict[str, Path]:
    """Write readings as one EyeLink ASC session file, with truth.json beside it.

    Args:
        readings: one trial each, in order; all at the same rate (250, 500, 1000 or 2000 Hz).
        path: the .asc file.
        seed: seeds the tracker clock and the recording date.
        image_dir: folder named in the IMGLOAD messages (the image is ``<image_dir>/<key>.png``).
        recorded_at: the DATE line; default from the seed.

    Returns:
        {"asc": path, "truth": path}.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 41])
    rate = readings[0].rate_hz
    if any(r.rate_hz != rate for r in readings):
        raise ValueError("all readings of one ASC file must share one sampling rate")
    if rate not in (250.0, 500.0, 1000.0, 2000.0):
        raise ValueError(f"EyeLink records at 250, 500, 1000 or 2000 Hz, not {rate}")
    step_ms = 1000.0 / rate

    def ts(v: float) -> str:
        return f"{v:.1f}" if rate == 2000.0 else str(int(round(v)))

    geo = readings[0].geometry
    W, H = geo.screen_width_px, geo.screen_height_px
    date = recorded_at or _dt.datetime(2021, 1, 4, 8, 0, 0) + _dt.timedelta(
        seconds=int(rng.integers(0, 700 * 86400))
    )
    ppd = geo.pixels_per_degree()
    edf_name = f"S{seed:03d}"
    lines = [
        f"** CONVERTED FROM D:\\gaze\\{edf_name}.edf using edfapi 4.2.1 Win32  EyeLink Dataviewer "
        f"Sub ComponentApr 12 2021 on {date + _dt.timedelta(days=1):%a %b %e %H:%M:%S %Y}",
        f"** DATE: {date:%a %b %e %H:%M:%S %Y}",
        "** TYPE: EDF_FILE BINARY EVENT SAMPLE TAGGED",
        "** VERSION: EYELINK II 1",
        "** SOURCE: EYELINK CL",
        "** EYELINK II CL v6.12 Feb  1 2018 (EyeLink 1000 Plus)",
        "** CAMERA: EyeLink USBCAM Version 1.01",
        "** SERIAL NUMBER: CLU-SYN01",
        "** CAMERA_CONFIG: SYN01200.SCD",
        "** RECORDED BY ml.synthetic",
        "**",
        "",
    ]
    clock = float(int(rng.integers(1_000_000, 3_000_000)))
    lines += [
        f"MSG\t{ts(clock)} DISPLAY_COORDS 0 0 {W - 1} {H - 1}",
        f"MSG\t{ts(clock)} RETRACE_INTERVAL  16.666666667",
        f"MSG\t{ts(clock)} ENVIRONMENT   OpenGL on Windows (6, 2, 9200, 2, '')",
    ]
    clock += 3000.0
    off = readings[0].calibration_offset_px
    off_deg = math.hypot(off[0] / ppd[0], off[1] / ppd[1])
    lines += [
        f"MSG\t{ts(clock)} !CAL CALIBRATION HV9 L LEFT    GOOD",
        f"MSG\t{ts(clock + 9000)} !CAL VALIDATION HV9 L LEFT  GOOD ERROR {off_deg + 0.05:.2f} avg. "
        f"{off_deg + 0.3:.2f} max  OFFSET {off_deg:.2f} deg. {off[0]:.1f},{off[1]:.1f} pix.",
    ]
    clock += 12000.0
    extras = []
    for trial, r in enumerate(readings):
        v = r.views[0]
        cx = (v.screen_rect[0] + v.screen_rect[2]) / 2
        cy = (v.screen_rect[1] + v.screen_rect[3]) / 2
        w = v.screen_rect[2] - v.screen_rect[0]
        h = v.screen_rect[3] - v.screen_rect[1]
        lines += [
            f"MSG\t{ts(clock)} TRIALID {trial}",
            f"MSG\t{ts(clock)} RECCFG CR {int(rate)} 2 1 L",
            f"MSG\t{ts(clock)} ELCLCFG BTABLER",
            f"MSG\t{ts(clock)} GAZE_COORDS 0.00 0.00 {W - 1:.2f} {H - 1:.2f}",
            f"MSG\t{ts(clock)} PUPIL_DATA_TYPE RAW_AUTOSLIP",
        ]
        t0 = clock + 2 * step_ms
        times = t0 + np.arange(r.t.size) * step_ms
        rate_s = f"{rate:.2f}"
        lines += [
            f"START\t{ts(t0)} \tLEFT\tSAMPLES\tEVENTS",
            "PRESCALER\t1",
            "VPRESCALER\t1",
            "PUPIL\tAREA",
            f"EVENTS\tGAZE\tLEFT\tRATE\t{rate_s}\tTRACKING\tCR\tFILTER\t2",
            f"SAMPLES\tGAZE\tLEFT\tRATE\t{rate_s}\tTRACKING\tCR\tFILTER\t2",
            f"MSG\t{ts(t0)} -8 !V IMGLOAD CENTER {image_dir}/{r.image_key}.png {cx:.0f} {cy:.0f} "
            f"{w:.0f} {h:.0f}",
            f"MSG\t{ts(t0)} !V TRIAL_VAR image {r.image_key}",
            f"MSG\t{ts(t0)} SYNCTIME",
        ]
        lines += _trial_body(r, times, ts, step_ms)
        end = times[-1] + step_ms
        lines += [
            f"END\t{ts(end)} \tSAMPLES\tEVENTS\tRES\t{ppd[0]:7.2f}\t{ppd[1]:7.2f}",
            f"MSG\t{ts(end + 2)} !V TRIAL_VAR label {r.label or 'none'}",
            f"MSG\t{ts(end + 3)} !V TRIAL_VAR reader {r.reader.name}",
            f"MSG\t{ts(end + 5)} TRIAL_RESULT 0",
        ]
        extras.append(
            {
                "trial_id": trial,
                "tracker_time_ms_at_first_sample": float(t0),
                "image_file": f"{image_dir}/{r.image_key}.png",
            }
        )
        clock = float(np.ceil(end + 1500.0))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth = write_truth(
        readings,
        path.with_name("truth.json"),
        fmt="eyelink_asc",
        extras=extras,
        notes={
            "positions": "screen pixels, origin top-left (DISPLAY_COORDS inclusive)",
            "time": "tracker clock ms; reading time t = sample time - tracker_time_ms_at_first"
            "_sample / 1000",
            "eye": "left",
        },
    )
    return {"asc": path, "truth": truth}


def _trial_body(r: Reading, times: np.ndarray, ts, step_ms: float) -> list[str]:
    """Samples and events of one trial, events placed around the samples they cover."""
    area = pupil_area(r.pupil_mm)
    ppd = r.geometry.pixels_per_degree()
    n = r.t.size
    is_fix = r.event == FIXATION
    starts: dict[int, list[str]] = {}
    ends: dict[int, list[str]] = {}

    def runs(mask: np.ndarray) -> list[tuple[int, int]]:
        edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
        return list(zip(edges[::2], edges[1::2] - 1, strict=True))

    for a, b in runs(is_fix & (r.fixation_index >= 0)):
        ok = r.valid[a : b + 1]
        if ok.any():
            mx = r.x[a : b + 1][ok].mean()
            my = r.y[a : b + 1][ok].mean()
            pa = area[a : b + 1][ok].mean()
            pos = f"{mx:7.1f}\t{my:7.1f}\t{int(round(pa)):7d}"
        else:
            pos = f"{'.':>7}\t{'.':>7}\t{0:7d}"
        dur = times[b] - times[a] + step_ms
        starts.setdefault(a, []).append(f"SFIX L   {ts(times[a])}")
        ends.setdefault(b, []).append(
            f"EFIX L   {ts(times[a])}\t{ts(times[b])}\t{int(round(dur))}\t{pos}"
        )
    for a, b in runs(~is_fix):
        # Saccade: from the last valid sample before it to the first valid one after it.
        before = a - 1 if a > 0 else a
        after = b + 1 if b + 1 < n else b
        sx, sy = r.x[before], r.y[before]
        ex, ey = r.x[after], r.y[after]
        amp = (
            math.hypot((ex - sx) / ppd[0], (ey - sy) / ppd[1])
            if np.isfinite([sx, sy, ex, ey]).all()
            else float("nan")
        )
        seg = np.flatnonzero(r.valid[a : b + 1])
        if seg.size > 1:
            d = np.hypot(
                np.diff(r.x[a : b + 1][seg]) / ppd[0], np.diff(r.y[a : b + 1][seg]) / ppd[1]
            )
            pv = float(d.max() * 1000.0 / step_ms)
        else:
            pv = amp / (((b - a + 1) * step_ms) / 1000.0) * 1.875 if np.isfinite(amp) else 0.0

        def xy(v: float) -> str:
            return f"{v:7.1f}" if np.isfinite(v) else f"{'.':>7}"

        dur = times[b] - times[a] + step_ms
        starts.setdefault(a, []).append(f"SSACC L  {ts(times[a])}")
        amp_s = f"{amp:7.2f}" if np.isfinite(amp) else f"{'.':>7}"
        ends.setdefault(b, []).append(
            f"ESACC L  {ts(times[a])}\t{ts(times[b])}\t{int(round(dur))}\t{xy(sx)}\t{xy(sy)}\t"
            f"{xy(ex)}\t{xy(ey)}\t{amp_s}\t{int(round(pv)):7d}"
        )
        blink = r.event[a : b + 1] == 2
        for ba, bb in runs(blink):
            ba, bb = ba + a, bb + a
            starts.setdefault(ba, []).append(f"SBLINK L {ts(times[ba])}")
            blink_ms = int(round(times[bb] - times[ba] + step_ms))
            ends.setdefault(bb, []).insert(
                0, f"EBLINK L {ts(times[ba])}\t{ts(times[bb])}\t{blink_ms}"
            )

    out: list[str] = []
    for i in range(n):
        out += starts.get(i, [])
        if r.valid[i]:
            out.append(f"{ts(times[i])}\t{r.x[i]:7.1f}\t{r.y[i]:7.1f}\t{area[i]:7.1f}\t...")
        else:
            out.append(f"{ts(times[i])}\t{'.':>7}\t{'.':>7}\t{0.0:7.1f}\t.C.")
        out += ends.get(i, [])
    return out
