"""Eye tracking, Django-free: read vendor exports, detect fixations, map to image pixels, grade.

Public API:

- :func:`read_recording`, :func:`detect_format` -> :class:`GazeRecording`; :data:`FORMATS`,
  the registry of :class:`FormatSpec` (reader, options, companion, refusal) (``ml.gaze.formats``)
- :func:`detect_fixations` with :class:`IVTConfig` / :class:`IDTConfig` (``ml.gaze.detection``)
- :class:`DisplayGeometry` (``ml.gaze.geometry``)
- :func:`map_to_image`, :func:`map_viewer_rects`, :class:`ImageRect`, :func:`match_stimuli`
  (``ml.gaze.mapping``)
- :func:`quality_report`, :class:`QualityThresholds` (``ml.gaze.quality``)
- where an image was drawn, screen to image, pixels per degree (``ml.gaze.screen``)
- a read recording analysed into per-image readings: ``analyse_recording`` with a
  ``ReadingSetup`` (``ml.gaze.analysis``)
"""

from ml.gaze.detection import IDTConfig, IVTConfig, detect_fixations
from ml.gaze.formats import (
    FORMATS,
    FormatSpec,
    detect_format,
    read_egd_cxr_master_sheet,
    read_recording,
)
from ml.gaze.geometry import DisplayGeometry
from ml.gaze.mapping import (
    ImagePoints,
    ImageRect,
    StimulusMatch,
    map_to_image,
    map_viewer_rects,
    match_stimuli,
)
from ml.gaze.quality import QualityReport, QualityThresholds, quality_report
from ml.gaze.recording import (
    Blinks,
    Calibration,
    Fixations,
    GazeFormatError,
    GazeRecording,
    Samples,
    Stimulus,
)

__all__ = [
    "FORMATS",
    "Blinks",
    "Calibration",
    "DisplayGeometry",
    "Fixations",
    "FormatSpec",
    "GazeFormatError",
    "GazeRecording",
    "IDTConfig",
    "IVTConfig",
    "ImagePoints",
    "ImageRect",
    "QualityReport",
    "QualityThresholds",
    "Samples",
    "Stimulus",
    "StimulusMatch",
    "detect_fixations",
    "detect_format",
    "map_to_image",
    "map_viewer_rects",
    "match_stimuli",
    "quality_report",
    "read_egd_cxr_master_sheet",
    "read_recording",
]
