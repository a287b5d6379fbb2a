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

EGD-CXR's eye_gaze.csv / fixations.csv have the same columns plus ``SESSION_ID``, ``DICOM_ID``,
``Time (in secs)`` and ``X_ORIGINAL``/``Y_ORIGINAL``.
"""

from __future__ import annotations

import numpy as np

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._labels import Labels
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
            media = r.find("MEDIA_NAME", required=False) or r.find("MEDIA_ID")
            rec.meta["export_time"] = ctime[5:-1] if ctime.startswith("TIME(") else ""
        ctick = next((h for h in r.header if h.startswith("TIMETICK")), None)
        need = ["FPOGX", "FPOGY", "FPOGS", "FPOGD", "FPOGID", "FPOGV"]
        for c in need:
            r.find(c)
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
        first_rows: list[tuple[float, float]] = []
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
            gl.add(np.frombuffer(ln, dtype=np.int64).copy())
            for k, c in colmap.items():
                g[k].add(num(c))
            for k, c in vmap.items():
                gv[k].add(np.nan_to_num(num(c)) == 1)
            if len(first_rows) < 200:
                first_rows.extend(zip(num("FPOGID")[:200], num("CNT")[:200], strict=True))
            names = columns[ix[media]]
            session = columns[ix[sess]] if sess else None
            gs.add(labels.runs(names, t, 0.0, "DICOM_ID" if egd else "MEDIA_NAME", session=session))

    if not g["t"].parts:
        raise GazeFormatError("no data rows after the header", path=path)
    if kind is None:
        fid = np.array([a for a, _ in first_rows])
        kind = "fixations" if len(fid) > 1 and np.all(np.diff(fid) != 0) else "all_gaze"
    if kind not in ("all_gaze", "fixations"):
        raise ValueError(f"kind must be 'all_gaze' or 'fixations', not {kind!r}")
    rec.format = (
        f"{fmt}_{'fixations' if kind == 'fixations' else ('eye_gaze' if egd else 'all_gaze')}"
    )
    lines = gl.array()
    stim = gs.array()
    media_t = g["t"].array()
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
    rec.screen_size_px = tuple(screen_size_px) if screen_size_px else None
    if rec.screen_size_px is None:
        rec.warn(
            "Gazepoint positions are fractions of the screen and the export does not state "
            "its size; give the session's screen size"
        )
    fid, fv = g["fid"].array(), gv["fv"].array()
    fs_ms = g["fs"].array() * 1000.0 + offset
    fd_ms = g["fd"].array() * 1000.0
    fx, fy = g["fx"].array(), g["fy"].array()
    xo, yo = g["xo"].array(), g["yo"].array()
    if kind == "fixations":
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
    bx, by = (g["bx"].array(), g["by"].array()) if has_b else (fx, fy)
    bv = gv["bv"].array() if has_b else fv
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


def _clock(
    rec: GazeRecording,
    media_t: np.ndarray,
    tick: np.ndarray,
    stim: np.ndarray,
    lines: np.ndarray,
    path: str,
    ctick: str | None,
) -> np.ndarray:
    """Recording time in ms: from TIMETICK when it is a usable clock, else from TIME."""
    usable = ctick is not None and np.isfinite(tick).all() and len(tick) > 0
    if usable and len(tick) > 1:
        steps = np.diff(tick)
        # Excel's 5.88E+12 keeps 3 significant digits: every step is then 0.
        usable = bool(np.count_nonzero(steps)) or len(tick) < 3
    if usable:
        rec.time_origin = "first row (Gazepoint TIMETICK, 10 MHz)"
        return (tick - tick[0]) / TICKS_PER_MS + media_t[0]
    if ctick is not None:
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
