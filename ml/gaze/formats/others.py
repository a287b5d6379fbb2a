"""REFLACX, Pupil Labs (Core Player and Neon/Cloud Marker Mapper) and the generic CSV.

REFLACX positions are already image pixels (the dataset mapped them through the viewer's zoom/pan
rectangles, which are kept per row in ``extra``). Pupil Core's normalised coordinates have their
origin at the bottom left and are flipped here; Neon surfaces are top-left already.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from ml.gaze.formats._common import CsvChunks, Grow, Labels, check_time, floats, open_text
from ml.gaze.recording import (
    SPACES,
    Fixations,
    GazeFormatError,
    GazeRecording,
    Samples,
    Stimulus,
)

REFLACX_RECT_COLUMNS = (
    "xmin_shown_from_image",
    "ymin_shown_from_image",
    "xmax_shown_from_image",
    "ymax_shown_from_image",
    "xmin_in_screen_coordinates",
    "ymin_in_screen_coordinates",
    "xmax_in_screen_coordinates",
    "ymax_in_screen_coordinates",
    "angular_resolution_x_pixels_per_degree",
    "angular_resolution_y_pixels_per_degree",
    "window_width",
    "window_level",
)


def _columns(
    path: str, cols: dict[str, str | None], delimiter: str = ","
) -> tuple[dict[str, np.ndarray], np.ndarray, CsvChunks]:
    """Read the named numeric columns of a CSV fully (None names give NaN)."""
    g = {k: Grow() for k in cols}
    gl = Grow(np.int64)
    with CsvChunks(path, delimiter=delimiter) as r:
        for c in cols.values():
            if c is not None and c not in r.index:
                r.find(c)
        for columns, ln in r.chunks():
            gl.add(np.frombuffer(ln, dtype=np.int64).copy())
            for k, c in cols.items():
                if c is None:
                    g[k].add(np.full(len(ln), np.nan))
                else:
                    g[k].add(floats(columns[r.index[c]], path=path, lines=ln, column=c))
    return {k: v.array() for k, v in g.items()}, gl.array(), r


def read_reflacx(
    path: str,
    *,
    metadata: str | None = None,
    reading_id: str | None = None,
) -> GazeRecording:
    """Read a REFLACX reading: ``main_data/<id>/fixations.csv`` or ``gaze_data/<id>/gaze.csv``.

    Args:
        path: The file.
        metadata: ``metadata_phase_<n>.csv``; gives the reading's dicom_id (the stimulus key),
            image size and the ``eye_tracking_data_discarded`` flag.
        reading_id: The reading's id; default: the name of the file's folder (the dataset's
            layout).

    Returns:
        A recording in ``image_px`` with per-row viewer rectangles and pixels per degree in
        ``extra`` (REFLACX readers could zoom and pan). Times are seconds from the start of the
        dictation audio, converted to ms.
    """
    rec = GazeRecording(format="reflacx", path=path, tracker="SR Research EyeLink 1000")
    rec.time_origin = "start of the dictation audio (REFLACX)"
    with open_text(path) as fh:
        header = fh.readline()
    is_fix = "timestamp_start_fixation" in header
    cols: dict[str, str | None] = {
        "x": "x_position",
        "y": "y_position",
        "pupil": "pupil_area_normalized",
    }
    cols.update({c: c for c in REFLACX_RECT_COLUMNS})
    if is_fix:
        cols.update(start="timestamp_start_fixation", end="timestamp_end_fixation")
    else:
        cols["t"] = "timestamp_sample"
    a, lines, _ = _columns(path, cols)
    reading_id = reading_id or Path(path).resolve().parent.name
    name, key = reading_id, reading_id
    if metadata is not None:
        meta = _reflacx_metadata(metadata, reading_id)
        rec.meta.update(meta)
        key = name = meta.get("dicom_id", reading_id)
        if str(meta.get("eye_tracking_data_discarded", "")).lower() in ("true", "1"):
            rec.warn(f"metadata marks reading {reading_id} as eye_tracking_data_discarded")
    extra = {c: a[c] for c in REFLACX_RECT_COLUMNS}
    n = len(lines)
    if is_fix:
        start, end = a["start"] * 1000.0, a["end"] * 1000.0
        check_time(start, lines, None, path, "timestamp_start_fixation")
        bad = np.flatnonzero(end < start)
        if bad.size:
            raise GazeFormatError(
                "fixation ends before it starts",
                path=path,
                line=int(lines[bad[0]]),
                column="timestamp_end_fixation",
            )
        stim = np.zeros(n, np.int32)
        rec.fixations = Fixations(
            start, end - start, a["x"], a["y"], stim, "image_px", "vendor", "", extra
        )
        span = (float(start[0]), float(end[-1])) if n else (math.nan, math.nan)
    else:
        t = a["t"] * 1000.0
        dup = check_time(t, lines, None, path, "timestamp_sample")
        if dup:
            rec.warn(f"{dup} sample(s) repeat the previous sample's time")
        valid = np.isfinite(a["x"]) & np.isfinite(a["y"])
        stim = np.zeros(n, np.int32)
        rec.samples = Samples(
            t, a["x"], a["y"], valid, a["pupil"], stim, lines, "image_px", extra=extra
        )
        span = (float(t[0]), float(t[-1])) if n else (math.nan, math.nan)
    rec.sampling_rate_declared_hz = None
    rec.stimuli = [Stimulus(name, key, span[0], span[1], "REFLACX reading")]
    if not n:
        raise GazeFormatError("no data rows after the header", path=path)
    return rec


def _reflacx_metadata(path: str, reading_id: str) -> dict[str, object]:
    with open_text(path) as fh:
        import csv

        for row in csv.DictReader(fh):
            if row.get("id") == reading_id:
                out: dict[str, object] = {
                    k: row[k]
                    for k in ("dicom_id", "eye_tracking_data_discarded", "split", "subject_id")
                    if k in row
                }
                with contextlib.suppress(KeyError, ValueError):
                    out["image_size"] = (int(row["image_size_x"]), int(row["image_size_y"]))
                return out
    raise GazeFormatError(f"reading {reading_id!r} is not in the metadata file", path=path)


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
    a, lines, _ = _columns(path, cols)
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
    a, lines, _ = _columns(path, cols)
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
    a, lines, _ = _columns(path, cols)
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
    a, _, _ = _columns(path, {"s": "section start time [ns]", "e": "section end time [ns]"})
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


_TIME_SCALE = {"ms": 1.0, "s": 1000.0, "us": 1e-3, "ns": 1e-6}


def read_generic_csv(
    path: str,
    *,
    time_unit: str | None = None,
    space: str | None = None,
    columns: dict[str, str] | None = None,
    screen_size_px: tuple[int, int] | None = None,
    duration_unit: str | None = None,
    delimiter: str | None = None,
) -> GazeRecording:
    """Read a CSV whose meaning the uploader declares (``time,x,y[,duration]``).

    Args:
        path: The file.
        time_unit: ``"ms"``, ``"s"``, ``"us"`` or ``"ns"`` (required: a file cannot say it).
        space: The coordinate space of x/y (required), one of :data:`ml.gaze.recording.SPACES`.
        columns: Column names for ``time``, ``x``, ``y`` and optionally ``duration`` (a
            duration column makes the rows fixations) and ``stimulus``; default: the names
            themselves.
        screen_size_px: The display size, when ``space`` is a screen space.
        duration_unit: Unit of the duration column (default: ``time_unit``).
        delimiter: Field separator; default: tab, semicolon or comma, whichever the header has.

    Returns:
        Samples (or fixations when a duration column is declared). Short rows read as blanks
        (missing values).

    Raises:
        GazeFormatError: undeclared units or space, missing columns, time running backwards.
    """
    if time_unit not in _TIME_SCALE:
        raise GazeFormatError(
            "a generic CSV needs its time unit declared (time_unit = ms, s, us or ns)", path=path
        )
    if space not in SPACES:
        raise GazeFormatError(
            f"a generic CSV needs its coordinate space declared (one of {', '.join(SPACES)})",
            path=path,
        )
    names = {"time": "time", "x": "x", "y": "y"}
    names.update(columns or {})
    if delimiter is None:
        with open_text(path) as fh:
            first = fh.readline()
        delimiter = next((d for d in ("\t", ";") if d in first), ",")
    rec = GazeRecording(format="generic_csv", path=path, time_origin="as declared by the uploader")
    cols: dict[str, str | None] = {"t": names["time"], "x": names["x"], "y": names["y"]}
    if "duration" in names:
        cols["d"] = names["duration"]
    a, lines, _ = _columns(path, cols, delimiter)
    t = a["t"] * _TIME_SCALE[time_unit]
    stim = np.full(len(t), -1, np.int32)
    if "stimulus" in names:
        labels = Labels()
        parts = []
        with CsvChunks(path, delimiter=delimiter) as r:
            ci = r.find(names["stimulus"])
            for c, ln in r.chunks():
                parts.append(labels.runs(c[r.index[ci]], np.zeros(len(ln)), 0.0, ci))
        stim = np.concatenate(parts)
        rec.stimuli = labels.stimuli
        for i, st in enumerate(rec.stimuli):
            rows = np.flatnonzero(stim == i)
            st.start_ms, st.end_ms = float(t[rows[0]]), float(t[rows[-1]])
    if screen_size_px is not None:
        rec.screen_size_px = (int(screen_size_px[0]), int(screen_size_px[1]))
    if "d" in cols:
        d = a["d"] * _TIME_SCALE[duration_unit or time_unit]
        check_time(t, lines, stim, path, names["time"])
        rec.fixations = Fixations(t, d, a["x"], a["y"], stim, space, "vendor")
        return rec
    dup = check_time(t, lines, stim, path, names["time"])
    if dup:
        rec.warn(f"{dup} sample(s) repeat the previous sample's time ({names['time']!r})")
    valid = np.isfinite(a["x"]) & np.isfinite(a["y"])
    nan = np.full(len(t), np.nan)
    rec.samples = Samples(t, a["x"], a["y"], valid, nan, stim, lines, space)
    n_missing = int((~valid).sum())
    if n_missing:
        rec.warn(f"{n_missing} of {len(t)} rows have no position (blank cells)")
    return rec
