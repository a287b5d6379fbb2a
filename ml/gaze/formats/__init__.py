"""Eye-tracker export readers: detect the format from the content, read it into a GazeRecording.

>>> rec = read_recording("upload.bin")          # any file name; the content decides
>>> rec.format, len(rec.samples), rec.warnings

Every refusal raises :class:`ml.gaze.recording.GazeFormatError` naming the file and, where there
is one, the line or column.
"""

from __future__ import annotations

import os

from ml.gaze.formats._text import EDF_MAGIC, as_path, head_text, read_head
from ml.gaze.formats.egd_cxr import read_egd_cxr_master_sheet
from ml.gaze.formats.registry import FORMATS, SCREEN_OPTION, FormatSpec
from ml.gaze.recording import GazeFormatError, GazeRecording

__all__ = [
    "FORMATS",
    "SCREEN_OPTION",
    "FormatSpec",
    "detect_format",
    "read_egd_cxr_master_sheet",
    "read_recording",
]


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
        raise GazeFormatError(
            "binary content that no supported eye-tracker export has (a NUL byte)",
            path=path,
            line=probe.count(b"\n", 0, probe.index(b"\x00")) + 1,
        )
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
    if {"FPOGX", "FPOGY"} <= cells and ("FPOGID" in cells or "FPOGD" in cells):
        return "gazepoint"  # Analysis 6.x may export a reduced set: TIME,TIMETICK,FPOGX,...
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
    if {"section id", "section start time [ns]"} <= cells:
        return "neon_sections"
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
    spec = FORMATS[fmt]
    if spec.refusal is not None:
        raise GazeFormatError(spec.refusal, path=p)
    unknown = sorted(set(options) - spec.options)
    if unknown:
        raise GazeFormatError(
            f"option(s) not understood by the {fmt} reader: {', '.join(unknown)} (it takes: "
            f"{', '.join(sorted(spec.options)) or 'none'})",
            path=p,
        )
    try:
        return spec.read(p, **options)
    except UnicodeError as exc:
        raise GazeFormatError(f"text encoding problem: {exc}", path=p) from None
