"""Pupil Player surface-tracker exports: ``gaze_positions_on_surface_<name>.csv`` and
``fixations_on_surface_<name>.csv``, for a surface defined by markers around the image.

Pupil semantics reproduced here: positions are fractions of the surface with the origin at the
**bottom left**; time is the Pupil clock in seconds (an arbitrary epoch); gaze comes at the
tracker's rate with a confidence (0 where the pupil was lost); a fixation's ``duration`` is in
milliseconds and the fixation is written once per world-camera frame that it spans, each row
with that frame's slightly different surface position (the surface is re-detected per frame).
Pupil Player names no stimulus: the uploader names the image (upload option ``image_key``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import Reading
from ml.synthetic.writers.truth import fixation_measured_positions, write_truth

__all__ = ["PUPIL_FIXATION_SURFACE_COLUMNS", "PUPIL_GAZE_SURFACE_COLUMNS", "write_pupil_core"]

PUPIL_GAZE_SURFACE_COLUMNS = (
    "world_timestamp", "world_index", "gaze_timestamp", "x_norm", "y_norm", "x_scaled",
    "y_scaled", "on_surf", "confidence",
)  # fmt: skip
PUPIL_FIXATION_SURFACE_COLUMNS = (
    "world_timestamp", "world_index", "fixation_id", "start_timestamp", "duration",
    "dispersion", "norm_pos_x", "norm_pos_y", "x_scaled", "y_scaled", "on_surf",
)  # fmt: skip
WORLD_FPS = 30.0
EPOCH_S = 5123.456789  # Pupil time starts anywhere
SURFACE_MM = (350.0, 430.0)  # real_world_size the surface was given (x_scaled = x_norm * it)


def write_pupil_core(
    reading: Reading,
    folder: str | Path,
    *,
    surface: str = "Image",
    frame_jitter: float = 2e-4,
    seed: int = 0,
) -> dict[str, Path]:
    """Write one reading as Pupil Player's surface exports, with truth.json beside them.

    Args:
        reading: the reading (one image; a zoom is not modelled: the first view's placement).
        folder: where the files go.
        surface: the surface's name (part of the file names).
        frame_jitter: spread of a fixation's per-frame surface positions (fractions).
        seed: seed of the jitter.

    Returns:
        {"gaze": path, "fixations": path, "truth": path}.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = reading.image_width, reading.image_height
    ix, iy = reading.samples_in_image()
    valid = reading.valid & np.isfinite(ix)
    t = EPOCH_S + reading.t
    world = np.floor(reading.t * WORLD_FPS).astype(int)
    gaze = folder / f"gaze_positions_on_surface_{surface}.csv"
    with open(gaze, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(PUPIL_GAZE_SURFACE_COLUMNS)
        for k in range(t.size):
            xn = ix[k] / w if valid[k] else 0.5
            yn = 1.0 - iy[k] / h if valid[k] else 0.5
            on = 0.0 <= xn <= 1.0 and 0.0 <= yn <= 1.0
            out.writerow(
                (
                    repr(EPOCH_S + world[k] / WORLD_FPS), int(world[k]), repr(float(t[k])),
                    repr(float(xn)), repr(float(yn)), repr(float(xn * SURFACE_MM[0])),
                    repr(float(yn * SURFACE_MM[1])), on, 1.0 if valid[k] else 0.0,
                )
            )  # fmt: skip
    f = reading.fixations
    sx, sy = fixation_measured_positions(reading)
    view = reading.views[0]
    fixations = folder / f"fixations_on_surface_{surface}.csv"
    with open(fixations, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(PUPIL_FIXATION_SURFACE_COLUMNS)
        fid = 0
        for k in range(len(f)):
            if not np.isfinite(sx[k]):
                continue
            fid += 1
            x, y = view.screen_to_image(sx[k], sy[k])
            xn, yn = float(x) / w, 1.0 - float(y) / h
            first = int(np.floor(f.start_s[k] * WORLD_FPS))
            last = int(np.floor((f.start_s[k] + f.duration_s[k]) * WORLD_FPS))
            frames = np.arange(first, last + 1)
            # Zero-mean jitter: the frames' mean is the fixation's position.
            jx = rng.normal(0, frame_jitter, frames.size)
            jy = rng.normal(0, frame_jitter, frames.size)
            jx -= jx.mean()
            jy -= jy.mean()
            for j, frame in enumerate(frames):
                a, b = xn + jx[j], yn + jy[j]
                out.writerow(
                    (
                        repr(EPOCH_S + frame / WORLD_FPS), int(frame), fid,
                        repr(float(EPOCH_S + f.start_s[k])), repr(float(f.duration_s[k] * 1000)),
                        0.8, repr(float(a)), repr(float(b)), repr(float(a * SURFACE_MM[0])),
                        repr(float(b * SURFACE_MM[1])), 0.0 <= a <= 1.0 and 0.0 <= b <= 1.0,
                    )
                )  # fmt: skip
    truth = write_truth(
        [reading],
        folder / "truth.json",
        fmt="pupil_core",
        notes={
            "surface": f"{surface}: the image itself (markers around it); origin bottom-left",
            "time": f"Pupil time in s; the reading starts at {EPOCH_S}",
            "gaze": gaze.name,
            "fixations": fixations.name,
        },
    )
    return {"gaze": gaze, "fixations": fixations, "truth": truth}
