"""REFLACX (eye tracking of radiologists reading MIMIC-CXR chest X-rays, PhysioNet).

REFLACX positions are already image pixels (the dataset mapped them through the viewer's zoom/pan
rectangles, which are kept per row in ``extra``), with the viewer's pixels per degree per row.
The reading's metadata file (``metadata_phase_<n>.csv``) is its companion: it names the image.
"""

from __future__ import annotations

import contextlib
import csv
import math
from pathlib import Path

import numpy as np

from ml.gaze.formats._numbers import check_time, read_columns
from ml.gaze.formats._text import open_text
from ml.gaze.recording import Fixations, GazeFormatError, GazeRecording, Samples, Stimulus

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
    a, lines, _ = read_columns(path, cols)
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
