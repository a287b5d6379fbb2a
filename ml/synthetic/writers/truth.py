"""The ground truth written beside every synthetic export (truth.json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import Reading

__all__ = ["fixation_measured_positions", "reading_truth", "write_truth"]


def fixation_measured_positions(reading: Reading) -> tuple[np.ndarray, np.ndarray]:
    """Mean recorded screen position of each true fixation (what a tracker would report).

    Args:
        reading: the reading.

    Returns:
        (x, y) arrays in screen pixels, one per fixation (NaN if all its samples were lost).
    """
    n = len(reading.fixations)
    sx, sy = np.full(n, np.nan), np.full(n, np.nan)
    for k in range(n):
        a = reading.fixations.first_sample[k]
        b = a + reading.fixations.n_samples[k]
        ok = reading.valid[a:b]
        if ok.any():
            sx[k] = float(reading.x[a:b][ok].mean())
            sy[k] = float(reading.y[a:b][ok].mean())
    return sx, sy


def reading_truth(reading: Reading, **extra: object) -> dict:
    """A JSON-ready description of a reading's ground truth.

    Args:
        reading: the reading.
        **extra: format-specific facts to record (file names, time offsets, ids).

    Returns:
        A dict: image key and size, label, reader, display geometry, views, tracker rate,
        calibration offset, and the true fixations (start and duration in seconds, image and
        screen pixels, on-image flag, target).
    """
    f = reading.fixations
    return {
        "image_key": reading.image_key,
        "kind": reading.kind,
        "image_width": reading.image_width,
        "image_height": reading.image_height,
        "label": reading.label,
        "finding_bbox": list(reading.finding_bbox) if reading.finding_bbox else None,
        "reader": asdict(reading.reader),
        "display_geometry": asdict(reading.geometry),
        "pixels_per_degree_at_centre": list(reading.geometry.pixels_per_degree()),
        "views": [asdict(v) for v in reading.views],
        "rate_hz": reading.rate_hz,
        "n_samples": int(reading.t.size),
        "n_valid_samples": int(reading.valid.sum()),
        "blink_count": reading.blink_count,
        "calibration_offset_px": list(reading.calibration_offset_px),
        "dot": list(reading.dot) if reading.dot else None,
        "fixations": [
            {
                "start_s": float(f.start_s[k]),
                "duration_s": float(f.duration_s[k]),
                "first_sample": int(f.first_sample[k]),
                "n_samples": int(f.n_samples[k]),
                "image_x": float(f.image_x[k]),
                "image_y": float(f.image_y[k]),
                "screen_x": float(f.screen_x[k]),
                "screen_y": float(f.screen_y[k]),
                "on_image": bool(f.on_image[k]),
                "target": f.target[k],
                "view_index": int(f.view_index[k]),
            }
            for k in range(len(f))
        ],
        **extra,
    }


def write_truth(
    readings: Sequence[Reading],
    path: str | Path,
    *,
    fmt: str,
    extras: Sequence[dict] | None = None,
    notes: dict | None = None,
) -> Path:
    """Write truth.json for a set of readings.

    Args:
        readings: the readings the export holds, in file order.
        path: the truth.json path.
        fmt: the export's format name.
        extras: per-reading extra facts (same length as readings).
        notes: facts about the whole export (units, conventions, file names).

    Returns:
        The path.
    """
    path = Path(path)
    extras = extras or [{} for _ in readings]
    doc = {
        "format": fmt,
        "notes": notes or {},
        "readings": [reading_truth(r, **e) for r, e in zip(readings, extras, strict=True)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path
