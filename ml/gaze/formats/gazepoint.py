"""Gazepoint Analysis CSV exports (all_gaze and fixations); EGD-CXR (:mod:`ml.gaze.formats.egd_cxr`)
is read by the same code.

Gazepoint facts used here (Gazepoint API/Analysis manual):

- ``TIME(<export datetime>)`` is seconds from the start of the current media (it restarts for
  every media); ``TIMETICK(f=10000000)`` is a 10 MHz tick counter over the whole recording;
- ``FPOGX/FPOGY`` (fixation point of gaze) and ``BPOGX/BPOGY`` (best point of gaze, the raw
  sample) are fractions of the screen with the origin at the top left and may fall outside 0-1;
  ``*V`` = 1 marks them valid;
- ``FPOGS``/``FPOGD`` are the fixation's start (media seconds) and duration (s); a fixations.csv
  row is the last sample of its fixation, so ``TIME = FPOGS + FPOGD``;
- ``BKID`` numbers blinks (0: none) and ``BKDUR`` is the previous blink's duration (s).

Excel re-saved files lose the trailing comma and write TIMETICK as ``5.88E+12`` (useless as a
clock): time then comes from TIME, with media restarts laid end to end, and a warning.

Gazepoint Analysis 6.x exports only the columns the user ticked; a reduced export such as
``TIME,TIMETICK,FPOGX,FPOGY,FPOGD,FPOGV,`` has no ``FPOGID``, no ``FPOGS``, no ``BPOG*`` and no
media columns. Then:

- fixations are derived: ``FPOGD`` is the duration of the current fixation so far (it grows while
  the fixation lasts, stays put after it ended, and restarts with the next one) and ``TIME -
  FPOGD`` is its start (``FPOGS``), constant over its valid (``FPOGV`` = 1) rows; a new fixation
  starts at a valid row whose start moves or whose ``FPOGD`` drops (on the real 6.9 exports this
  gives exactly the exported ``FPOGID`` runs). A fixations file has one fixation per row;
- ``FPOGS`` is ``TIME - FPOGD``; without ``BPOG*`` the samples are the FPOG point (between
  fixations it follows the gaze; valid where ``FPOGV`` is 1 or a point other than (0, 0) is given);
- an export without ``MEDIA_NAME``/``MEDIA_ID`` names no image: its gaze is a reading of the image
  the upload names (the ``image_key`` option);
- ``TIMETICK`` without ``(f=...)`` has its frequency measured against TIME.

EGD-CXR's eye_gaze.csv / fixations.csv have the same columns plus ``SESSION_ID``, ``DICOM_ID``,
``Time (in secs)`` and ``X_ORIGINAL``/``Y_ORIGINAL``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._labels import Labels, printable
from ml.gaze.formats._numbers import Grow, check_time, floats
from ml.gaze.formats._text import open_text
from ml.gaze.recording import (
    Blinks,
    EyeSamples,
    Fixations,
    GazeFormatError,
    GazeRecording,
    Samples,
    measured_rate_hz,
)

TICKS_PER_MS = 10_000.0
# Two valid rows belong to one fixation while their start (TIME - FPOGD) stays within this (ms):
# TIME and FPOGD are written to 10 us, so a start moves by 0.02 ms at most within a fixation.
START_TOLERANCE_MS = 1.0
# Without FPOGID, a file is all_gaze when this share of consecutive rows share a start (the
# real 6.9 all_gaze exports: 0.74 and 0.90; a fixations file: 0).
SHARED_START_ALL_GAZE = 0.3


def read_gazepoint(
    path: str,
    *,
    kind: str | None = None,
    screen_size_px: tuple[int, int] | None = None,
) -> GazeRecording:
    """Read a Gazepoint Analysis ``*_all_gaze.csv`` or ``*_fixations.csv`` export.

    Args:
        path: The export.
        kind: ``"all_gaze"`` or ``"fixations"``; default: from the content (fixation rows have
            distinct ``FPOGID`` values, sample rows repeat them).
        screen_size_px: The display size (Gazepoint positions are screen fractions; the export
            does not state the resolution).

    Returns:
        A recording. all_gaze: samples (BPOG, the raw point of gaze; FPOG kept in
        ``samples.extra``), vendor fixations (the last sample of each valid ``FPOGID``), blinks
        (``BKID``). fixations: vendor fixations only.

    Raises:
        GazeFormatError: missing columns, bad numbers, time running backwards within a media.
    """
    return read_gazepoint_csv(path, kind=kind, screen_size_px=screen_size_px, egd=False)


def read_gazepoint_csv(
    path: str, *, kind: str | None, screen_size_px: tuple[int, int] | None, egd: bool
) -> GazeRecording:
    """Read Gazepoint columns (``egd``: with EGD-CXR's own columns); see :func:`read_gazepoint`."""
    fmt = "egd_cxr" if egd else "gazepoint"
    rec = GazeRecording(format=fmt, path=path, tracker="Gazepoint GP3 HD" if egd else "Gazepoint")
    rec.meta["pupil_unit"] = "mm (LPMM/RPMM)"
    g = {
        k: Grow()
        for k in ("t", "tick", "bx", "by", "fx", "fy", "fs", "fd", "fid", "xo", "yo", "bk")
    }
    g.update({k: Grow() for k in ("pl", "pr", "lx", "ly", "rx", "ry")})
    gv = {k: Grow(bool) for k in ("bv", "fv", "lv", "rv")}
    gl, gs = Grow(np.int64), Grow(np.int32)
    labels = Labels()
    with CsvChunks(path) as r:
        ix = r.index
        if egd:
            ctime = r.find("Time (in secs)")
            sess = r.find("SESSION_ID")
            media = r.find("DICOM_ID")
        else:
            ctime = next((h for h in r.header if h.startswith("TIME(")), None) or r.find("TIME")
            sess = None
            media = r.find("MEDIA_NAME", required=False) or r.find("MEDIA_ID", required=False)
            rec.meta["export_time"] = ctime[5:-1] if ctime.startswith("TIME(") else ""
        ctick = next((h for h in r.header if h.startswith("TIMETICK")), None)
        for c in ("FPOGX", "FPOGY", "FPOGD", "FPOGV"):
            r.find(c)
        has_id, has_start = "FPOGID" in ix, "FPOGS" in ix
        if egd:  # the dataset's files always have them
            r.find("FPOGS")
            r.find("FPOGID")
        has_b = "BPOGX" in ix and "BPOGY" in ix
        colmap = {
            "bx": "BPOGX",
            "by": "BPOGY",
            "fx": "FPOGX",
            "fy": "FPOGY",
            "fs": "FPOGS",
            "fd": "FPOGD",
            "fid": "FPOGID",
            "bk": "BKID",
            "pl": "LPMM",
            "pr": "RPMM",
            "xo": "X_ORIGINAL",
            "yo": "Y_ORIGINAL",
        }
        vmap = {"bv": "BPOGV", "fv": "FPOGV", "lv": "LPMMV", "rv": "RPMMV"}
        numeric = [ctime, ctick, *colmap.values(), *vmap.values(), "FPOGID", "CNT"]
        for columns, ln in r.chunks(fast=True, numeric=numeric, text=[media, sess]):

            def num(name: str | None, columns=columns, ln=ln) -> np.ndarray:
                if name is None or name not in ix:
                    return np.full(len(ln), np.nan)
                return floats(columns[ix[name]], path=path, lines=ln, column=name)

            t = num(ctime) * 1000.0
            tick = num(ctick)
            g["t"].add(t)
            g["tick"].add(tick)
            rows_ln = np.frombuffer(ln, dtype=np.int64).copy()
            gl.add(rows_ln)
            for k, c in colmap.items():
                g[k].add(num(c))
            for k, c in vmap.items():
                gv[k].add(np.nan_to_num(num(c)) == 1)
            if media is None:
                gs.add(np.full(len(ln), -1, np.int32))
                continue
            names = columns[ix[media]]
            session = columns[ix[sess]] if sess else None
            gs.add(
                labels.runs(
                    names, t, 0.0, "DICOM_ID" if egd else "MEDIA_NAME", session=session,
                    lines=rows_ln,
                )
            )  # fmt: skip

    if not g["t"].parts:
        raise GazeFormatError("no data rows after the header", path=path)
    lines = gl.array()
    stim = gs.array()
    media_t = g["t"].array()
    if kind is None:
        kind = _kind(g["fid"].array(), media_t - g["fd"].array() * 1000.0, stim, has_id)
    if kind not in ("all_gaze", "fixations"):
        raise ValueError(f"kind must be 'all_gaze' or 'fixations', not {kind!r}")
    rec.format = (
        f"{fmt}_{'fixations' if kind == 'fixations' else ('eye_gaze' if egd else 'all_gaze')}"
    )
    column = "DICOM_ID" if egd else (media or "")
    for st in labels.unprintable():
        rec.warn(
            f"line {st.line}: the {column} cell '{printable(st.name)}' holds a control character "
            "(a NUL byte?): kept as a stimulus of its own, which matches no image"
        )
    tick = g["tick"].array()
    time_ms = _clock(rec, media_t, tick, stim, lines, path, ctick)
    # Media-relative seconds -> recording ms: the offset of each row's media clock.
    offset = time_ms - media_t
    rec.stimuli = labels.stimuli
    # Each stimulus's first and last row (one pass over the rows, not one per stimulus).
    rows = np.flatnonzero(stim >= 0)
    if rows.size:
        ids, first = np.unique(stim[rows], return_index=True)
        _, last = np.unique(stim[rows][::-1], return_index=True)
        first_t = time_ms[rows[first]]
        last_t = time_ms[rows[len(rows) - 1 - last]]
        for i, a, b in zip(ids.tolist(), first_t.tolist(), last_t.tolist(), strict=True):
            rec.stimuli[i].start_ms = a
            rec.stimuli[i].end_ms = b
    if media is None:
        rec.meta["reduced_export"] = True
        rec.warn(
            "the export has no MEDIA_NAME or MEDIA_ID column (a reduced Gazepoint export): it "
            "names no image, and is a reading of the image the upload names (option image_key)"
        )
    rec.screen_size_px = tuple(screen_size_px) if screen_size_px else None
    if rec.screen_size_px is None:
        rec.warn(
            "Gazepoint positions are fractions of the screen and the export does not state "
            "its size; give the session's screen size"
        )
    fv = gv["fv"].array()
    fd_ms = g["fd"].array() * 1000.0
    fx, fy = g["fx"].array(), g["fy"].array()
    xo, yo = g["xo"].array(), g["yo"].array()
    # FPOGS (media seconds) on the recording clock; without it, TIME - FPOGD is the same start.
    fs_ms = g["fs"].array() * 1000.0 + offset if has_start else time_ms - fd_ms
    if kind == "fixations":
        fid = g["fid"].array() if has_id else np.arange(1.0, len(fv) + 1.0)
        keep = np.ones(len(fid), bool)
        rec.fixations = Fixations(
            fs_ms[keep],
            fd_ms[keep],
            fx[keep],
            fy[keep],
            stim[keep],
            "screen_norm",
            "vendor",
            eye="both",
            extra={"id": fid[keep], "line": lines[keep]},
        )
        if egd:
            rec.fixations.extra.update(x_original=xo[keep], y_original=yo[keep])
        _check_fixation_times(rec, time_ms, fs_ms, fd_ms, lines)
        return rec

    dup = check_time(time_ms, lines, stim, path, ctick or ctime)
    if dup:
        rec.warn(f"{dup} sample(s) repeat the previous sample's time")
    if has_id:
        fid = g["fid"].array()
    else:
        fid = _derived_fixation_ids(media_t - fd_ms, fd_ms, fv & np.isfinite(fx), stim)
        rec.meta["fixation_ids"] = "derived from FPOGD (no FPOGID column)"
    if has_b:
        bx, by, bv = g["bx"].array(), g["by"].array(), gv["bv"].array()
    else:
        # FPOGV = 0 says "no fixation now", not "no gaze": between fixations the real exports'
        # FPOG follows the gaze. Gazepoint writes a lost point as (0, 0).
        bx, by = fx, fy
        bv = fv | (np.isfinite(fx) & np.isfinite(fy) & ((fx != 0) | (fy != 0)))
        rec.warn(
            "no BPOGX/BPOGY columns: the samples are the fixation point of gaze (FPOGX/FPOGY), "
            "valid where FPOGV is 1 or a point other than (0, 0) is given"
        )
    valid = bv & np.isfinite(bx) & np.isfinite(by)
    pl, pr = g["pl"].array(), g["pr"].array()
    lv, rv = gv["lv"].array(), gv["rv"].array()
    pl = np.where(lv, pl, np.nan)
    pr = np.where(rv, pr, np.nan)
    pupil = np.where(lv & rv, (pl + pr) / 2, np.where(lv, pl, pr))
    nan = np.full(len(bx), np.nan)
    eyes = {
        "left": EyeSamples(nan, nan, pl, lv),
        "right": EyeSamples(nan, nan, pr, rv),
    }
    extra = {"fpog_x": fx, "fpog_y": fy, "fpog_valid": fv, "fpog_id": fid}
    if egd:
        extra.update(x_original=xo, y_original=yo)
    rec.samples = Samples(time_ms, bx, by, valid, pupil, stim, lines, "screen_norm", eyes, extra)
    # Vendor fixations: the last valid sample of each FPOGID (its FPOGD is the full duration).
    ok = fv & np.isfinite(fid)
    rows = np.flatnonzero(ok)
    if rows.size:
        key = fid[rows] + 1e9 * stim[rows]
        last = rows[np.r_[key[1:] != key[:-1], True]]
        rec.fixations = Fixations(
            fs_ms[last],
            fd_ms[last],
            fx[last],
            fy[last],
            stim[last],
            "screen_norm",
            "vendor",
            eye="both",
            extra={"id": fid[last]},
        )
        if egd:
            rec.fixations.extra.update(x_original=xo[last], y_original=yo[last])
    bk = g["bk"].array()
    if np.isfinite(bk).any():
        rows = np.flatnonzero(bk > 0)
        if rows.size:
            key = bk[rows] + 1e9 * stim[rows]
            starts = rows[np.r_[True, key[1:] != key[:-1]]]
            ends = rows[np.r_[key[1:] != key[:-1], True]]
            dt = 1000.0 / (rec.sampling_rate_measured_hz or 60.0)
            rec.blinks = Blinks(
                time_ms[starts], time_ms[ends] - time_ms[starts] + dt, np.full(len(starts), "")
            )
    return rec


def _kind(fid: np.ndarray, start_ms: np.ndarray, stim: np.ndarray, has_id: bool) -> str:
    """``all_gaze`` or ``fixations`` from the rows' FPOGID, or without it their fixation's start
    (media TIME - FPOGD, ms): within one media, fixation rows never repeat an FPOGID and never
    share a start with the next row, while sample rows do both (a fixation lasts many samples).
    FPOGID restarts with each media (EGD-CXR), so pairs across a media change do not count."""
    if len(fid) < 2:
        return "all_gaze"
    same = stim[1:] == stim[:-1]
    if has_id:
        return "fixations" if np.all(np.diff(fid)[same] != 0) else "all_gaze"
    with np.errstate(invalid="ignore"):
        shared = np.abs(np.diff(start_ms)) <= START_TOLERANCE_MS
    pairs = same & np.isfinite(np.diff(start_ms))
    if not pairs.any():
        return "all_gaze"
    share = float(np.mean(shared[pairs]))
    return "all_gaze" if share >= SHARED_START_ALL_GAZE else "fixations"


def _derived_fixation_ids(
    start_ms: np.ndarray, fd_ms: np.ndarray, valid: np.ndarray, stim: np.ndarray
) -> np.ndarray:
    """Fixation ids of all_gaze rows without FPOGID (NaN on rows outside a valid fixation).

    A valid row starts a new fixation when its start (media TIME - FPOGD) moves by more than
    :data:`START_TOLERANCE_MS` from the previous valid row's, when FPOGD drops (it restarts with
    each fixation), or when the media changes.
    """
    out = np.full(len(start_ms), np.nan)
    rows = np.flatnonzero(valid & np.isfinite(start_ms) & np.isfinite(fd_ms))
    if not rows.size:
        return out
    new = np.r_[
        True,
        (np.abs(np.diff(start_ms[rows])) > START_TOLERANCE_MS)
        | (np.diff(fd_ms[rows]) < 0)
        | (np.diff(stim[rows]) != 0),
    ]
    out[rows] = np.cumsum(new)
    return out


def _clock(
    rec: GazeRecording,
    media_t: np.ndarray,
    tick: np.ndarray,
    stim: np.ndarray,
    lines: np.ndarray,
    path: str,
    ctick: str | None,
) -> np.ndarray:
    """Recording time in ms: from TIMETICK when it is a usable clock, else from TIME.

    The tick frequency is the header's ``(f=...)``; a ``TIMETICK`` column that states none has
    it measured against TIME (a power of ten, 10 MHz on every Gazepoint export seen).
    """
    usable = ctick is not None and np.isfinite(tick).all() and len(tick) > 0
    if usable and len(tick) > 1:
        steps = np.diff(tick)
        # Excel's 5.88E+12 keeps 3 significant digits: every step is then 0.
        usable = bool(np.count_nonzero(steps)) or len(tick) < 3
    per_ms = _ticks_per_ms(ctick, media_t, tick, stim) if usable else None
    if per_ms is not None:
        rec.time_origin = f"first row (Gazepoint TIMETICK, {per_ms / 1000:g} MHz)"
        return (tick - tick[0]) / per_ms + media_t[0]
    if usable:
        rec.warn(
            f"column {ctick!r} states no tick frequency and none could be measured against "
            "TIME: time comes from the TIME column instead"
        )
    elif ctick is not None:
        rec.warn(
            f"column {ctick!r} has lost its precision (an Excel re-save writes 5.88E+12): "
            "time comes from the TIME column instead"
        )
    rec.time_origin = "start of the first media (Gazepoint TIME, media restarts laid end to end)"
    out = media_t.astype(np.float64).copy()
    change = np.flatnonzero(stim[1:] != stim[:-1]) + 1
    if change.size:
        dt = 1000.0 / (measured_rate_hz(media_t, stim) or 60.0)
        offset = 0.0
        bounds = np.r_[0, change, len(out)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            out[a:b] += offset
            offset = out[b - 1] + dt - (media_t[b] if b < len(out) else 0.0)
        rec.warn("media restart TIME at 0; their runs were laid end to end")
    return out


def _ticks_per_ms(
    ctick: str, media_t: np.ndarray, tick: np.ndarray, stim: np.ndarray
) -> float | None:
    """Ticks per ms of a TIMETICK column: its header's ``f=``, else measured against TIME and
    rounded to a power of ten (None when the measure is no power of ten, within 2 %)."""
    m = re.search(r"f\s*=\s*([0-9.eE+]+)", ctick)
    if m:
        try:
            return float(m.group(1)) / 1000.0
        except ValueError:
            pass
    if len(tick) < 2:
        return TICKS_PER_MS
    dt = np.diff(media_t)
    keep = (dt > 0) & (stim[1:] == stim[:-1])
    if not keep.any():
        return None
    ratio = float(np.median(np.diff(tick)[keep] / dt[keep]))
    if not math.isfinite(ratio) or ratio <= 0:
        return None
    power = 10.0 ** round(math.log10(ratio))
    return power if abs(ratio / power - 1.0) < 0.02 else None


def _check_fixation_times(
    rec: GazeRecording, time_ms: np.ndarray, fs: np.ndarray, fd: np.ndarray, lines: np.ndarray
) -> None:
    """A fixations.csv row is the fixation's last sample: TIME should equal FPOGS + FPOGD."""
    gap = np.abs(time_ms - (fs + fd))
    bad = np.flatnonzero(gap > 50.0)
    if bad.size:
        rec.warn(
            f"{bad.size} fixation row(s) whose time is not FPOGS + FPOGD (first on line "
            f"{int(lines[bad[0]])}): is this really a fixations export?"
        )


def is_gazepoint_summary(path: str) -> bool:
    """Whether a file is Gazepoint Analysis's AOI *Data Summary* (not gaze data)."""
    with open_text(path) as fh:
        return fh.readline().startswith("Gazepoint Analysis")
