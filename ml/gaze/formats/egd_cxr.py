"""EGD-CXR (eye gaze on MIMIC-CXR chest X-rays, PhysioNet): Gazepoint exports with the dataset's
own columns, and ``master_sheet.csv``, their companion, which gives each image's padding.

``eye_gaze.csv`` / ``fixations.csv`` have Gazepoint's columns (:mod:`ml.gaze.formats.gazepoint`)
plus ``SESSION_ID``, ``DICOM_ID``, ``Time (in secs)`` and ``X_ORIGINAL``/``Y_ORIGINAL`` (DICOM px;
< 0 = off the image). The screen was 1920 x 1080 (dataset description).
"""

from __future__ import annotations

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._numbers import floats
from ml.gaze.formats.gazepoint import read_gazepoint_csv
from ml.gaze.recording import GazeRecording

EGD_CXR_SCREEN_PX = (1920, 1080)


def read_egd_cxr(
    path: str,
    *,
    kind: str | None = None,
    master_sheet: str | None = None,
) -> GazeRecording:
    """Read EGD-CXR's ``eye_gaze.csv`` or ``fixations.csv`` (streamed; 1.5 M rows are fine).

    Args:
        path: The file.
        kind: ``"eye_gaze"`` or ``"fixations"``; default: from the content.
        master_sheet: ``master_sheet.csv``; when given, each stimulus gets the image's padding
            (``placement``) and DICOM_IDs absent from it are marked as calibration screens.

    Returns:
        A recording whose stimuli are (SESSION_ID, DICOM_ID) runs with ``key = DICOM_ID``;
        ``extra['x_original'/'y_original']`` hold the dataset's own image-px positions.
    """
    rec = read_gazepoint_csv(
        path,
        kind={"eye_gaze": "all_gaze"}.get(kind or "", kind),
        screen_size_px=EGD_CXR_SCREEN_PX,
        egd=True,
    )
    # EGD-CXR's calibration screens are a dot at the centre of the screen.
    rec.meta["calibration_target"] = "screen centre"
    if master_sheet is not None:
        pads = read_egd_cxr_master_sheet(master_sheet)
        calibration = []
        for s in rec.stimuli:
            p = pads.get(s.key)
            if p is not None:
                s.placement = {"anchor": "padding", **p}
            elif s.name.isprintable() and s.name.strip():
                # An id absent from master_sheet.csv is a calibration screen; a cell with a
                # control character in it (a NUL byte) is a damaged id, not a calibration
                # screen: it stays a stimulus that matches nothing, and is reported as such.
                s.source = "calibration"
                calibration.append(s.key)
        if calibration:
            rec.meta["calibration_screens"] = sorted(set(calibration))
    return rec


def read_egd_cxr_master_sheet(path: str) -> dict[str, dict[str, float]]:
    """The image padding of each DICOM_ID in EGD-CXR's master_sheet.csv.

    The free-text columns may hold commas and line breaks inside quotes; the csv module reads
    them, and only the five needed columns are kept.

    Returns:
        ``{dicom_id: {"top": .., "bottom": .., "left": .., "right": ..}}`` in original-image
        pixels (the margins that pad the image to the screen's aspect ratio before it is scaled
        to the screen; :meth:`ml.gaze.mapping.ImageRect.from_padding` places it).

    Raises:
        GazeFormatError: when the padding columns are missing.
    """
    out: dict[str, dict[str, float]] = {}
    with CsvChunks(path) as r:
        cid = r.find("dicom_id")
        names = {k: r.find(f"image_{k}_pad") for k in ("top", "bottom", "left", "right")}
        for columns, ln in r.chunks():
            vals = {
                k: floats(columns[r.index[c]], path=path, lines=ln, column=c)
                for k, c in names.items()
            }
            for i, d in enumerate(columns[r.index[cid]]):
                out[d.strip()] = {k: float(v[i]) for k, v in vals.items()}
    return out
