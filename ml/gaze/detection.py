"""Fixation detection from samples: I-VT and I-DT (Salvucci & Goldberg, 2000).

Defaults: I-VT 30 deg/s and 60 ms (Olsen 2012, the Tobii I-VT filter's defaults: pymovements'
20 deg/s sits inside the sample noise of raw 1 kHz EyeLink data, where the 'smooth' velocity of a
steady fixation often reaches 20-25 deg/s); I-DT 1.0 deg dispersion and 100 ms (Salvucci &
Goldberg 2000, pymovements' defaults). In pixel units (no viewing geometry), give thresholds in
px/s and px.

Conventions (where implementations differ):

- velocity: pymovements' ``"smooth"`` method (Engbert & Kliegl: mean of the next two samples
  minus mean of the previous two, over three sample intervals), from the nominal sampling rate;
- a fixation's duration covers its samples: ``t_last - t_first + one interval`` (EyeLink's
  convention), and a candidate is kept when that is >= ``min_duration_ms``;
- I-DT's dispersion is ``(max x - min x) + (max y - min y)``; a window grows while the dispersion
  stays <= the threshold, and the next window starts at the first sample that broke it;
- detection runs separately on each stretch of samples with one stimulus and no gap longer than
  ``max_gap_ms``; a sample without a position ends the candidate (no interpolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ml.gaze.geometry import DisplayGeometry
from ml.gaze.recording import Fixations, GazeFormatError, Samples, measured_rate_hz


@dataclass(frozen=True)
class IVTConfig:
    """I-VT parameters (velocity in deg/s with a geometry, px/s without)."""

    velocity_threshold: float = 30.0
    min_duration_ms: float = 60.0
    max_gap_ms: float = 75.0


@dataclass(frozen=True)
class IDTConfig:
    """I-DT parameters (dispersion in deg with a geometry, px without)."""

    dispersion_threshold: float = 1.0
    min_duration_ms: float = 100.0
    max_gap_ms: float = 75.0


def velocity_smooth(x: np.ndarray, y: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis velocity (units/s) by the 'smooth' five-sample method (pymovements' default).

    Args:
        x, y: Positions of one continuous stretch.
        rate_hz: The nominal sampling rate.

    Returns:
        (vx, vy); the two samples at each end use shorter differences, as pymovements does.
    """
    out = []
    for a in (np.asarray(x, float), np.asarray(y, float)):
        n = a.shape[0]
        v = np.full(n, np.nan)
        if n >= 6:
            v[2 : n - 2] = (a[4:] + a[3:-1] - a[1:-3] - a[:-4]) * rate_hz / 6.0
            v[1] = (a[2] - a[0]) * rate_hz / 2.0
            v[n - 2] = (a[n - 1] - a[n - 3]) * rate_hz / 2.0
            v[0] = (a[1] - a[0]) * rate_hz / 2.0
            v[n - 1] = (a[n - 1] - a[n - 2]) * rate_hz / 2.0
        elif n >= 2:
            v[1:] = np.diff(a) * rate_hz
            v[0] = v[1]
        out.append(v)
    return out[0], out[1]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) indices of the runs of True in a boolean array."""
    m = np.r_[False, mask, False].astype(np.int8)
    d = np.diff(m)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def ivt(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    rate_hz: float,
    velocity_threshold: float = IVTConfig.velocity_threshold,
    min_duration_ms: float = IVTConfig.min_duration_ms,
) -> tuple[np.ndarray, np.ndarray]:
    """I-VT on one continuous stretch of samples.

    Args:
        t: Sample times (ms).
        x, y: Positions (deg or px; NaN = missing).
        rate_hz: Nominal sampling rate (for the velocity and the last sample's interval).
        velocity_threshold: Samples strictly slower than this are fixation candidates.
        min_duration_ms: Shortest fixation kept (duration = t_last - t_first + 1/rate).

    Returns:
        (onset indices, offset indices), inclusive.
    """
    vx, vy = velocity_smooth(x, y, rate_hz)
    speed = np.hypot(vx, vy)
    with np.errstate(invalid="ignore"):
        cand = speed < velocity_threshold
    on, off = _runs(cand)
    dt = 1000.0 / rate_hz
    keep = (t[off] - t[on] + dt) >= min_duration_ms - 1e-9
    return on[keep], off[keep]


def idt(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    rate_hz: float,
    dispersion_threshold: float = IDTConfig.dispersion_threshold,
    min_duration_ms: float = IDTConfig.min_duration_ms,
) -> tuple[np.ndarray, np.ndarray]:
    """I-DT on one continuous stretch of samples.

    Args:
        t: Sample times (ms).
        x, y: Positions (deg or px; NaN = missing, never part of a fixation).
        rate_hz: Nominal sampling rate: the first window holds ceil(min_duration * rate) samples.
        dispersion_threshold: Largest (x range + y range) of a fixation.
        min_duration_ms: Shortest fixation.

    Returns:
        (onset indices, offset indices), inclusive.
    """
    n = len(t)
    k = max(2, math.ceil(min_duration_ms * rate_hz / 1000.0 - 1e-9))
    if n < k:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    # Dispersion of every k-sample window [i, i + k) at once; windows with a NaN never qualify.
    xs, ys = np.where(bad, 0.0, x), np.where(bad, 0.0, y)
    wx = sliding_window_view(xs, k)
    wy = sliding_window_view(ys, k)
    cx_min, cx_max = wx.min(axis=1), wx.max(axis=1)
    cy_min, cy_max = wy.min(axis=1), wy.max(axis=1)
    nan_count = np.convolve(bad.astype(np.int64), np.ones(k, np.int64), "valid")
    disp = np.where(nan_count > 0, np.inf, (cx_max - cx_min) + (cy_max - cy_min))
    on, off = [], []
    i = 0
    while i <= n - k:
        if disp[i] > dispersion_threshold:
            i += 1
            continue
        j = i + k  # exclusive end
        x0, x1 = cx_min[i], cx_max[i]
        y0, y1 = cy_min[i], cy_max[i]
        while j < n and not bad[j]:
            nx0, nx1 = min(x0, x[j]), max(x1, x[j])
            ny0, ny1 = min(y0, y[j]), max(y1, y[j])
            if (nx1 - nx0) + (ny1 - ny0) > dispersion_threshold:
                break
            x0, x1, y0, y1 = nx0, nx1, ny0, ny1
            j += 1
        on.append(i)
        off.append(j - 1)
        i = j
    return np.asarray(on, np.int64), np.asarray(off, np.int64)


def segments(samples: Samples, max_gap_ms: float) -> list[tuple[int, int]]:
    """Index ranges [a, b) of samples with one stimulus and no gap longer than max_gap_ms."""
    n = len(samples)
    if n == 0:
        return []
    t = samples.time_ms
    cut = np.flatnonzero((np.diff(t) > max_gap_ms) | (np.diff(samples.stimulus) != 0)) + 1
    bounds = np.r_[0, cut, n]
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def detect_fixations(
    samples: Samples,
    *,
    method: str = "ivt",
    geometry: DisplayGeometry | None = None,
    config: IVTConfig | IDTConfig | None = None,
    rate_hz: float | None = None,
) -> Fixations:
    """Detect fixations in a recording's samples.

    Args:
        samples: Samples in ``screen_px`` (degrees need ``geometry`` with mm and distance),
            or any space with thresholds in that space's units when ``geometry`` is None.
        method: ``"ivt"`` or ``"idt"``.
        geometry: The session's display; with ``screen_mm`` and ``distance_mm`` the thresholds
            are in degrees of visual angle.
        config: :class:`IVTConfig` / :class:`IDTConfig` (defaults: pymovements').
        rate_hz: Nominal sampling rate; default: measured from the samples.

    Returns:
        Fixations (``source = "detected"``) in the samples' space: position = mean of the
        fixation's valid samples, duration = t_last - t_first + one sample interval.

    Raises:
        GazeFormatError: HREF samples (not a screen position), or too few samples.
    """
    if method not in ("ivt", "idt"):
        raise ValueError(f"method must be 'ivt' or 'idt', not {method!r}")
    if samples.space == "href":
        raise GazeFormatError("HREF samples are head-referenced angles: detection needs gaze")
    cfg = config or (IVTConfig() if method == "ivt" else IDTConfig())
    rate = rate_hz or measured_rate_hz(samples.time_ms, samples.stimulus)
    if rate is None:
        raise GazeFormatError("too few samples to detect fixations")
    x = np.where(samples.valid, samples.x, np.nan)
    y = np.where(samples.valid, samples.y, np.nan)
    ux, uy = x, y
    if geometry is not None and geometry.has_angles:
        if samples.space == "screen_norm":
            x, y = x * geometry.screen_px[0], y * geometry.screen_px[1]
        elif samples.space != "screen_px":
            raise GazeFormatError(
                f"degrees need screen coordinates; these samples are in {samples.space}"
            )
        ux, uy = geometry.pix2deg(x, y)
    # Repeated timestamps would make zero-length intervals: keep the first of each.
    keep = np.r_[True, np.diff(samples.time_ms) > 0]
    starts, durs, fx, fy, stims = [], [], [], [], []
    for a, b in segments(samples, cfg.max_gap_ms):
        rows = np.flatnonzero(keep[a:b]) + a
        if rows.size < 2:
            continue
        t = samples.time_ms[rows]
        if isinstance(cfg, IVTConfig):
            on, off = ivt(
                t,
                ux[rows],
                uy[rows],
                rate_hz=rate,
                velocity_threshold=cfg.velocity_threshold,
                min_duration_ms=cfg.min_duration_ms,
            )
        else:
            on, off = idt(
                t,
                ux[rows],
                uy[rows],
                rate_hz=rate,
                dispersion_threshold=cfg.dispersion_threshold,
                min_duration_ms=cfg.min_duration_ms,
            )
        for i, j in zip(on, off, strict=True):
            r = rows[i : j + 1]
            starts.append(t[i])
            durs.append(t[j] - t[i] + 1000.0 / rate)
            fx.append(np.nanmean(samples.x[r][samples.valid[r]]))
            fy.append(np.nanmean(samples.y[r][samples.valid[r]]))
            stims.append(samples.stimulus[rows[i]])
    return Fixations(
        np.asarray(starts, float),
        np.asarray(durs, float),
        np.asarray(fx, float),
        np.asarray(fy, float),
        np.asarray(stims, np.int32),
        samples.space,
        "detected",
    )
