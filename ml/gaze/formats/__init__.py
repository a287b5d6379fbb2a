"""Eye-tracker export readers: detect the format from the content, read it into a GazeRecording.

>>> rec = read_recording("upload.bin")          # any file name; the content decides
>>> rec.format, len(rec.samples), rec.warnings

Every refusal raises :class:`ml.gaze.recording.GazeFormatError` naming the file and, where there
is one, the line or column.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ml.gaze.formats._common import EDF_MAGIC, as_path, head_text, read_head
from ml.gaze.formats.eyelink import (
    read_eyelink_asc,
    read_eyelink_dataviewer_report,
    refuse_eyelink_edf,
)
from ml.gaze.formats.gazepoint import (
    read_egd_cxr,
    read_egd_cxr_master_sheet,
    read_gazepoint,
)
from ml.gaze.formats.others import read_generic_csv, read_neon, read_pupil_core, read_reflacx
from ml.gaze.formats.tobii import read_tobii_pro_lab, read_tobii_studio
from ml.gaze.recording import GazeFormatError, GazeRecording

__all__ = [
    "FORMATS",
    "detect_format",
    "read_egd_cxr_master_sheet",
    "read_recording",
]


def _refuse(message: str) -> Callable[..., GazeRecording]:
    """A reader that refuses its format with ``message`` (the upload checks the name)."""

    def refuse(path: str, **_: object) -> GazeRecording:
        raise GazeFormatError(message, path=path)

    return refuse


def _companion(what: str, use: str) -> Callable[..., GazeRecording]:
    return _refuse(f"this is {what}, not gaze data: {use}")


FORMATS: dict[str, Callable[..., GazeRecording]] = {
    "eyelink_asc": read_eyelink_asc,
    "eyelink_edf": refuse_eyelink_edf,
    "eyelink_dataviewer_report": read_eyelink_dataviewer_report,
    "tobii_pro_lab_tsv": read_tobii_pro_lab,
    "tobii_studio_tsv": read_tobii_studio,
    "gazepoint": read_gazepoint,
    "egd_cxr": read_egd_cxr,
    "reflacx": read_reflacx,
    "pupil_core": read_pupil_core,
    "neon": read_neon,
    "generic_csv": read_generic_csv,
    "gazepoint_summary": _companion(
        "a Gazepoint Analysis data summary (AOI statistics)",
        "export the all_gaze.csv or fixations.csv file instead",
    ),
    "egd_cxr_master_sheet": _companion(
        "EGD-CXR's master_sheet.csv",
        "upload eye_gaze.csv or fixations.csv and give master_sheet.csv with it",
    ),
    "reflacx_metadata": _companion(
        "REFLACX metadata",
        "upload a reading's fixations.csv or gaze.csv and give the metadata file with it",
    ),
    "neon_scene_camera": _refuse(
        "this is Pupil Cloud's gaze or fixations in scene-camera pixels: they move with the "
        "wearer's head and cannot be mapped to an image; run the Marker Mapper enrichment with "
        "markers around the image and upload its gaze.csv or fixations.csv (positions on the "
        "surface)"
    ),
    "neon_companion": _companion(
        "a Pupil Cloud companion table (sections / surface positions / events)",
        "upload gaze.csv or fixations.csv and give sections.csv with it",
    ),
}


def detect_format(source: str | os.PathLike[str] | bytes) -> str:
    """Name the format of an export from its content (never from its file name).

    Args:
        source: A path, or the first bytes of the file (64 KiB is plenty).

    Returns:
        A key of :data:`FORMATS`.

    Raises:
        GazeFormatError: for binary junk, empty files and unrecognised text.
    """
    path = None
    if isinstance(source, bytes):
        head = source
    else:
        path = as_path(source)
        head = read_head(path)
    if head.startswith(EDF_MAGIC):
        return "eyelink_edf"
    if not head.strip():
        raise GazeFormatError("the file is empty", path=path)
    probe = head[:4096]
    if b"\x00" in probe and not probe.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GazeFormatError("binary content that no supported eye-tracker export has", path=path)
    text = head_text(head)
    lines = [ln for ln in text.splitlines() if ln.strip()][:40]
    first = lines[0]
    if first.startswith("** CONVERTED FROM") or any(
        ln.startswith(("START\t", "SAMPLES\t", "EVENTS\t", "MSG\t", "EFIX ", "SFIX "))
        for ln in lines
    ):
        return "eyelink_asc"
    if first.startswith("Gazepoint Analysis"):
        return "gazepoint_summary"
    tabs = first.split("\t")
    if tabs[0].startswith("Recording timestamp") or "Gaze point X [DACS px]" in tabs:
        return "tobii_pro_lab_tsv"
    if "StudioVersionRec" in tabs or (
        "RecordingTimestamp" in tabs and "GazePointX (ADCSpx)" in tabs
    ):
        return "tobii_studio_tsv"
    cells = {c.strip() for c in first.replace("\t", ",").replace(";", ",").split(",")}
    if {"DICOM_ID", "FPOGX", "SESSION_ID"} <= cells:
        return "egd_cxr"
    if "FPOGX" in cells and "FPOGID" in cells:
        return "gazepoint"
    if {"dicom_id", "image_top_pad"} <= cells:
        return "egd_cxr_master_sheet"
    if "xmin_shown_from_image" in cells:
        return "reflacx"
    if {"dicom_id", "eye_tracking_data_discarded"} <= cells:
        return "reflacx_metadata"
    if {"gaze_timestamp", "confidence"} <= cells and ("norm_pos_x" in cells or "x_norm" in cells):
        return "pupil_core"
    if {"start_timestamp", "duration", "norm_pos_x", "dispersion"} <= cells:
        return "pupil_core"  # Player's fixations.csv or fixations_on_surface_<name>.csv
    if "section id" in cells and (
        "gaze position on surface x [normalized]" in cells or "fixation x [normalized]" in cells
    ):
        return "neon"
    if "section id" in cells and ("gaze x [px]" in cells or "fixation x [px]" in cells):
        return "neon_scene_camera"
    if "section id" in cells:
        return "neon_companion"
    if {"CURRENT_FIX_X", "CURRENT_FIX_Y"} <= cells:
        return "eyelink_dataviewer_report"
    if len(cells) >= 2 and all(c and c.isprintable() for c in cells) and len(lines) > 1:
        return "generic_csv"
    raise GazeFormatError(
        f"unrecognised format (first line: {first[:80]!r}); supported: EyeLink ASC, Tobii Pro "
        "Lab/Studio TSV, Gazepoint CSV, EGD-CXR, REFLACX, Pupil Labs, Data Viewer reports, or "
        "a generic CSV with declared columns",
        path=path,
        line=1,
    )


def read_recording(
    path: str | os.PathLike[str], format: str | None = None, **options: object
) -> GazeRecording:
    """Read any supported export into a :class:`GazeRecording`.

    Args:
        path: The file.
        format: A key of :data:`FORMATS`; default: :func:`detect_format`.
        **options: Passed to the format's reader (e.g. ``screen_size_px``, ``master_sheet``,
            ``metadata``, ``time_unit``/``space``/``columns`` for a generic CSV). Options the
            reader does not take are refused.

    Returns:
        The recording.

    Raises:
        GazeFormatError: when the file cannot be read (the message names file, line, column).
    """
    p = as_path(path)
    fmt = format or detect_format(p)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    reader = FORMATS[fmt]
    try:
        return reader(p, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise GazeFormatError(
                f"option not understood by the {fmt} reader: {exc}", path=p
            ) from None
        raise
    except UnicodeError as exc:
        raise GazeFormatError(f"text encoding problem: {exc}", path=p) from None
