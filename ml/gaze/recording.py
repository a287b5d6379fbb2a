"""The one tidy structure every gaze reader returns.

A :class:`GazeRecording` holds what an eye-tracker export says, in one shape whatever the vendor:
samples and/or fixations as numpy arrays (time in milliseconds, coordinates with their space named),
blinks, stimulus intervals (what was on screen, and when), calibration/validation results, the
screen size when the file states it, the sampling rate (declared and measured), and the warnings
raised while reading.

Coordinate spaces (every array of positions says which one it is in; normalised spaces are always
converted to an origin at the **top left** when read, so y grows downwards everywhere):

``screen_px``     display pixels, origin top left (EyeLink GAZE, Tobii DACS/ADCS px)
``screen_norm``   fraction of the display, origin top left (Gazepoint FPOG/BPOG, Tobii SDK)
``media_norm``    fraction of the presented media (Tobii MCS norm)
``media_px``      pixels of the presented media (Tobii Studio MCSpx)
``image_px``      pixels of the image itself (REFLACX, EGD-CXR ``*_ORIGINAL``)
``surface_norm``  fraction of a tracked surface (Pupil Labs surfaces; Core's bottom-left origin
                  is flipped on reading)
``camera_norm``   fraction of a head-mounted scene camera (Pupil Core world camera; flipped too)
``href``          EyeLink head-referenced angles (HREF units, not pixels): cannot be mapped to an
                  image; flagged
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPACES = (
    "screen_px",
    "screen_norm",
    "media_norm",
    "media_px",
    "image_px",
    "surface_norm",
    "camera_norm",
    "href",
)


class GazeFormatError(ValueError):
    """A file that cannot be read as gaze data; the message names the file and the line or column.

    Args:
        message: What is wrong, written for the person who uploaded the file.
        path: The file (shown first in the message).
        line: The 1-based line number where the problem is, when it has one.
        column: The column name involved, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        where = []
        if path:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass
class EyeSamples:
    """One eye's samples, aligned with :attr:`Samples.time_ms` (NaN where missing)."""

    x: np.ndarray
    y: np.ndarray
    pupil: np.ndarray
    valid: np.ndarray


@dataclass
class Samples:
    """Gaze samples as parallel numpy arrays of length n.

    Attributes:
        time_ms: float64 sample times in milliseconds (see ``GazeRecording.time_origin``).
        x, y: float64 positions in ``space``; NaN where the tracker lost the eye.
        valid: bool, the tracker's own validity (and finite x/y).
        pupil: float64 pupil size (the vendor's unit, see ``GazeRecording.meta['pupil_unit']``).
        stimulus: int32 index into ``GazeRecording.stimuli`` (-1: none).
        line: int64 1-based line in the file each sample came from (for error reports).
        space: the coordinate space of ``x``/``y`` (one of :data:`SPACES`).
        eyes: per-eye arrays when the file has them ("left"/"right").
        extra: further per-sample arrays a format provides (viewer rectangles, image px...).
    """

    time_ms: np.ndarray
    x: np.ndarray
    y: np.ndarray
    valid: np.ndarray
    pupil: np.ndarray
    stimulus: np.ndarray
    line: np.ndarray
    space: str
    eyes: dict[str, EyeSamples] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time_ms.shape[0])


@dataclass
class Fixations:
    """Fixations as parallel arrays of length n.

    Attributes:
        start_ms: float64 onset (NaN when the format gives only durations).
        duration_ms: float64 duration covering the fixation's samples (EyeLink's convention:
            last sample time - first sample time + one sample interval).
        x, y: float64 mean position in ``space``.
        stimulus: int32 index into ``GazeRecording.stimuli`` (-1: none).
        space: coordinate space of ``x``/``y``.
        source: ``"vendor"`` (read from the file) or ``"detected"`` (I-VT/I-DT here).
        eye: ``"left"``, ``"right"``, ``"both"`` or ``""`` when the format does not say.
        extra: further per-fixation arrays (pixels per degree, viewer rectangles...).
    """

    start_ms: np.ndarray
    duration_ms: np.ndarray
    x: np.ndarray
    y: np.ndarray
    stimulus: np.ndarray
    space: str
    source: str = "vendor"
    eye: str = ""
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.duration_ms.shape[0])

    @property
    def end_ms(self) -> np.ndarray:
        """Onset plus duration (the time just after the last sample)."""
        return self.start_ms + self.duration_ms


@dataclass
class Blinks:
    """Blinks (or losses the vendor labels as blinks) as parallel arrays."""

    start_ms: np.ndarray
    duration_ms: np.ndarray
    eye: np.ndarray  # str array: "left", "right" or ""

    def __len__(self) -> int:
        return int(self.start_ms.shape[0])


@dataclass
class Stimulus:
    """Something shown on screen during an interval, named by a key images are matched on.

    Attributes:
        name: The name as the file writes it (an IMGLOAD path, a Tobii media name, a DICOM_ID).
        key: The name reduced to what an image key would be (file stem without folders or
            extension); images are matched on it.
        start_ms, end_ms: The interval (end exclusive; NaN when unknown).
        source: Where the name came from (``IMGLOAD``, ``TRIALID``, ``MEDIA_NAME``...).
        placement: Where the format says the media was drawn, in screen px, when it does:
            ``{"anchor": "top_left"|"center", "x": .., "y": .., "width": .., "height": ..}``
            (width/height may be None when the file leaves them to the image's own size).
        session: A session id when one file holds several (EGD-CXR SESSION_ID).
        line: The file's line where the stimulus first appears, when the reader knows it (for
            reports that name where a stimulus came from).
    """

    name: str
    key: str
    start_ms: float
    end_ms: float
    source: str
    placement: dict[str, Any] | None = None
    session: str = ""
    line: int | None = None


@dataclass
class Calibration:
    """A calibration or validation result stated by the file.

    Attributes:
        kind: ``"calibration"`` or ``"validation"``.
        eye: ``"left"``, ``"right"`` or ``""``.
        avg_error_deg, max_error_deg: Errors in degrees of visual angle (NaN when not given).
        result: The vendor's verdict (``GOOD``, ``FAIR``, ``POOR``) or ``""``.
        time_ms: When it was recorded (NaN when unknown).
        avg_error_px: Error in screen pixels when that is all the file gives.
    """

    kind: str
    eye: str
    avg_error_deg: float
    max_error_deg: float
    result: str = ""
    time_ms: float = float("nan")
    avg_error_px: float = float("nan")


@dataclass
class GazeRecording:
    """Everything one export file says, in one shape.

    Attributes:
        format: The detected format name (see ``ml.gaze.formats.FORMATS``).
        path: The file read.
        tracker: Make and model as the file states it ("" when it does not).
        samples: Gaze samples, or None for fixation-only exports.
        fixations: The vendor's fixations, or None when the file has none.
        blinks: Blinks the vendor marked, or None.
        stimuli: What was on screen; ``samples.stimulus``/``fixations.stimulus`` index this list.
        calibrations: Calibration/validation results found in the file.
        screen_size_px: (width, height) of the display when the file states it, else None.
        sampling_rate_declared_hz: The rate the header states, or None.
        time_origin: What ``time_ms == 0`` means for this file.
        messages: (time_ms, text) messages/events the file logged, in file order.
        warnings: Problems found and worked around, each naming the line or column.
        meta: Other facts read from the file (software versions, units...).
    """

    format: str
    path: str
    tracker: str = ""
    samples: Samples | None = None
    fixations: Fixations | None = None
    blinks: Blinks | None = None
    stimuli: list[Stimulus] = field(default_factory=list)
    calibrations: list[Calibration] = field(default_factory=list)
    screen_size_px: tuple[int, int] | None = None
    sampling_rate_declared_hz: float | None = None
    time_origin: str = ""
    messages: list[tuple[float, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sampling_rate_measured_hz(self) -> float | None:
        """The rate measured from the samples: 1000 / median interval (None without samples)."""
        if self.samples is None or len(self.samples) < 2:
            return None
        return measured_rate_hz(self.samples.time_ms, self.samples.stimulus)

    def warn(self, message: str) -> None:
        """Record a problem that was worked around (shown to the user in the parse report)."""
        self.warnings.append(message)


def measured_rate_hz(time_ms: np.ndarray, segment: np.ndarray | None = None) -> float | None:
    """Sampling rate from the median positive interval between consecutive samples.

    Intervals across a change of ``segment`` (e.g. stimulus) are ignored, because several
    formats restart or jump the clock there.

    Args:
        time_ms: Sample times in ms.
        segment: Optional per-sample segment ids.

    Returns:
        The rate in Hz, or None when no positive interval exists.
    """
    dt = np.diff(np.asarray(time_ms, dtype=np.float64))
    keep = dt > 0
    if segment is not None and len(segment) == len(time_ms):
        keep &= segment[1:] == segment[:-1]
    if not keep.any():
        return None
    return float(1000.0 / np.median(dt[keep]))


def empty_fixations(space: str, source: str = "vendor") -> Fixations:
    """A :class:`Fixations` with no rows (for formats or readings with none)."""
    z = np.zeros(0, dtype=np.float64)
    return Fixations(z, z.copy(), z.copy(), z.copy(), np.zeros(0, np.int32), space, source)
