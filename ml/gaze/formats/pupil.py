"""Pupil Labs: Pupil Core (Pupil Player exports) and Neon (Pupil Cloud Marker Mapper exports).

Pupil Core's normalised coordinates have their origin at the bottom left and are flipped here;
Neon surfaces are top-left already. Neon's ``sections.csv`` is the companion of its gaze and
fixations: its sections become the stimuli.
"""

from __future__ import annotations

import numpy as np

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._numbers import check_time, read_columns
from ml.gaze.recording import Fixations, GazeFormatError, GazeRecording, Samples, Stimulus


def read_pupil_core(path: str, *, min_confidence: float = 0.6) -> GazeRecording:
    """Read a Pupil Player export: gaze (``gaze_positions.csv``,
    ``gaze_positions_on_surface_<name>.csv``) or fixations (``fixations.csv``,
    ``fixations_on_surface_<name>.csv``).

    Args:
        path: The export.
        min_confidence: Samples below this confidence are invalid (Pupil Labs recommend 0.6).

    Returns:
        Samples, or vendor fixations, in ``camera_norm`` (world camera) or ``surface_norm``,
        with y flipped so the origin is at the top left like every other format here; time on
        the Pupil clock (ms). Player writes a fixation on a surface once per world-camera frame
        it spans: those rows are merged into one fixation at their mean position.
    """
    rec = GazeRecording(format="pupil_core", path=path, tracker="Pupil Labs Pupil Core")
    rec.time_origin = "Pupil time (arbitrary epoch)"
    with CsvChunks(path) as r:
        is_fix = "start_timestamp" in r.index and "gaze_timestamp" not in r.index
        on_surface = "x_norm" in r.index or "on_surf" in r.index
    space = "surface_norm" if on_surface else "camera_norm"
    if not on_surface:
        rec.warn(
            "world-camera coordinates: they move with the head and cannot be mapped to an image "
            "without surface tracking (export the surface tracker's "
            f"{'fixations' if is_fix else 'gaze_positions'}_on_surface_<name>.csv)"
        )
    if is_fix:
        rec.fixations = _pupil_fixations(path, on_surface, space)
        return rec
    cols = {
        "t": "gaze_timestamp",
        "c": "confidence",
        "x": "x_norm" if on_surface else "norm_pos_x",
        "y": "y_norm" if on_surface else "norm_pos_y",
    }
    a, lines, _ = read_columns(path, cols)
    t = a["t"] * 1000.0
    # Player writes binocular matches slightly out of order at times; refuse only real jumps.
    dup = check_time(t, lines, None, path, "gaze_timestamp")
    if dup:
        rec.warn(f"{dup} sample(s) repeat the previous sample's time")
    x, y = a["x"], 1.0 - a["y"]
    valid = (a["c"] >= min_confidence) & np.isfinite(x) & np.isfinite(y)
    nan = np.full(len(t), np.nan)
    rec.samples = Samples(
        t,
        x,
        y,
        valid,
        nan,
        np.full(len(t), -1, np.int32),
        lines,
        space,
        extra={"confidence": a["c"]},
    )
    return rec


def _pupil_fixations(path: str, on_surface: bool, space: str) -> Fixations:
    """Player's fixations: ``start_timestamp`` in s (Pupil time), ``duration`` in ms, one row
    per fixation (``fixations.csv``) or per world frame of it (``..._on_surface_<name>.csv``,
    merged here by ``fixation_id``, positions averaged)."""
    cols = {
        "id": "fixation_id" if on_surface else "id",
        "s": "start_timestamp",
        "d": "duration",
        "x": "norm_pos_x",
        "y": "norm_pos_y",
    }
    a, lines, _ = read_columns(path, cols)
    if not len(lines):
        raise GazeFormatError("no fixations after the header", path=path)
    bad = np.flatnonzero(~np.isfinite(a["id"]) | ~np.isfinite(a["s"]) | ~np.isfinite(a["d"]))
    if bad.size:
        raise GazeFormatError(
            "a fixation without its id, start or duration",
            path=path,
            line=int(lines[bad[0]]),
        )
    ids, first, inverse, counts = np.unique(
        a["id"], return_index=True, return_inverse=True, return_counts=True
    )
    # Every row of one fixation must describe the same fixation (start and duration).
    for k in ("s", "d"):
        differs = np.flatnonzero(a[k] != a[k][first][inverse])
        if differs.size:
            i = int(differs[0])
            raise GazeFormatError(
                f"fixation {a['id'][i]:g} has another {cols[k]} here than on its first row",
                path=path,
                line=int(lines[i]),
                column=cols[k],
            )
    x = np.bincount(inverse, weights=a["x"], minlength=len(ids)) / counts
    y = np.bincount(inverse, weights=a["y"], minlength=len(ids)) / counts
    order = np.argsort(a["s"][first], kind="stable")
    start = a["s"][first][order] * 1000.0
    check_time(start, lines[first][order], None, path, "start_timestamp")
    return Fixations(
        start,
        a["d"][first][order],
        x[order],
        1.0 - y[order],
        np.full(len(ids), -1, np.int32),
        space,
        "vendor",
        extra={"id": ids[order], "line": lines[first][order]},
    )


def read_neon(
    path: str,
    *,
    sections: str | None = None,
) -> GazeRecording:
    """Read a Pupil Cloud Marker Mapper export: ``gaze.csv`` or ``fixations.csv``.

    Args:
        path: The file.
        sections: ``sections.csv`` of the same export; its sections become stimuli (named by
            their start event).

    Returns:
        Samples or fixations in ``surface_norm`` (origin top left), time in UTC ms.
        ``gaze detected on surface = false`` rows keep their positions (off the surface).
    """
    rec = GazeRecording(format="neon", path=path, tracker="Pupil Labs Neon")
    rec.time_origin = "UTC (Unix epoch)"
    with CsvChunks(path) as r:
        is_fix = "start timestamp [ns]" in r.index
    if is_fix:
        cols = {
            "s": "start timestamp [ns]",
            "e": "end timestamp [ns]",
            "d": "duration [ms]",
            "x": "fixation x [normalized]",
            "y": "fixation y [normalized]",
        }
    else:
        cols = {
            "t": "timestamp [ns]",
            "x": "gaze position on surface x [normalized]",
            "y": "gaze position on surface y [normalized]",
        }
    a, lines, _ = read_columns(path, cols)
    stimuli = _neon_sections(sections) if sections else []
    rec.stimuli = stimuli
    # ns since 1970 is ~1.7e18: as float64 ms the resolution is ~0.2 us, ample for gaze.
    if is_fix:
        start = a["s"] / 1e6
        check_time(start, lines, None, path, cols["s"])
        rec.fixations = Fixations(
            start, a["d"], a["x"], a["y"], _in(start, stimuli), "surface_norm", "vendor"
        )
    else:
        t = a["t"] / 1e6
        dup = check_time(t, lines, None, path, cols["t"])
        if dup:
            rec.warn(f"{dup} sample(s) repeat the previous sample's time")
        valid = np.isfinite(a["x"]) & np.isfinite(a["y"])
        nan = np.full(len(t), np.nan)
        rec.samples = Samples(t, a["x"], a["y"], valid, nan, _in(t, stimuli), lines, "surface_norm")
    return rec


def _neon_sections(path: str) -> list[Stimulus]:
    a, _, _ = read_columns(path, {"s": "section start time [ns]", "e": "section end time [ns]"})
    names: list[str] = []
    with CsvChunks(path) as r:
        ci = r.find("start event name")
        for columns, _ln in r.chunks():
            names.extend(columns[r.index[ci]])
    return [
        Stimulus(name, name, float(s) / 1e6, float(e) / 1e6, "section")
        for name, s, e in zip(names, a["s"], a["e"], strict=True)
    ]


def _in(t: np.ndarray, stimuli: list[Stimulus]) -> np.ndarray:
    out = np.full(len(t), -1, np.int32)
    for i, s in enumerate(stimuli):
        out[(t >= s.start_ms) & (t <= s.end_ms)] = i
    return out
