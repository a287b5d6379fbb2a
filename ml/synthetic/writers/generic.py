"""Generic CSV: ``time,x,y`` (raw samples) or ``time,x,y,duration`` (fixations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import Reading
from ml.synthetic.writers.truth import fixation_measured_positions, write_truth

__all__ = ["write_generic_csv"]


def write_generic_csv(
    reading: Reading,
    path: str | Path,
    *,
    kind: str = "samples",
    coordinates: str = "screen",
) -> dict[str, Path]:
    """Write one reading as a generic CSV, with truth.json beside it.

    Time is in milliseconds from the reading's start; x and y in screen pixels (origin top-left)
    or in image pixels; lost samples have empty x and y. The uploader must state these units, as
    the format does not carry them: truth.json records them.

    Args:
        reading: the reading.
        path: the CSV file.
        kind: "samples" (time,x,y) or "fixations" (time,x,y,duration; start and duration in ms).
        coordinates: "screen" or "image".

    Returns:
        {"csv": path, "truth": path}.
    """
    if kind not in ("samples", "fixations"):
        raise ValueError(f"kind must be 'samples' or 'fixations', got {kind!r}")
    if coordinates not in ("screen", "image"):
        raise ValueError(f"coordinates must be 'screen' or 'image', got {coordinates!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "samples":
        x, y = (reading.x, reading.y) if coordinates == "screen" else reading.samples_in_image()
        lines = ["time,x,y"]
        for t, a, b in zip(reading.t * 1000.0, x, y, strict=True):
            lines.append(f"{t:.1f},{a:.1f},{b:.1f}" if np.isfinite(a) else f"{t:.1f},,")
    else:
        f = reading.fixations
        x, y = fixation_measured_positions(reading)
        if coordinates == "image":
            views = reading.view_index_at(f.start_s)
            for k in range(len(f)):
                x[k], y[k] = reading.views[views[k]].screen_to_image(x[k], y[k])
        lines = ["time,x,y,duration"]
        for k in range(len(f)):
            if np.isfinite(x[k]):
                lines.append(
                    f"{f.start_s[k] * 1000:.1f},{x[k]:.1f},{y[k]:.1f},{f.duration_s[k] * 1000:.1f}"
                )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth = write_truth(
        [reading],
        path.with_name("truth.json"),
        fmt="generic_csv",
        notes={
            "time": "ms from the reading's start",
            "kind": kind,
            "coordinates": f"{coordinates} pixels, origin top-left",
            "file": path.name,
        },
    )
    return {"csv": path, "truth": truth}
