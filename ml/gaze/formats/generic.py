"""The generic CSV: ``time,x,y[,duration][,stimulus]``, whose time unit and coordinate space the
uploader declares (a file cannot say them)."""

from __future__ import annotations

import numpy as np

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._labels import Labels
from ml.gaze.formats._numbers import check_time, read_columns
from ml.gaze.formats._text import open_text
from ml.gaze.recording import SPACES, Fixations, GazeFormatError, GazeRecording, Samples

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
    a, lines, _ = read_columns(path, cols, delimiter)
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
