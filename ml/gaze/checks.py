"""Checks of a recording against what it should show: its calibration screens (the gaze on
the dot, where the export places it) and EGD-CXR's own image positions (``X_ORIGINAL`` /
``Y_ORIGINAL``) against where the mapping puts the gaze, under either pad convention."""

from __future__ import annotations

import math

import numpy as np

from ml.gaze.formats._labels import printable
from ml.gaze.geometry import DisplayGeometry
from ml.gaze.mapping import ImageRect
from ml.gaze.quality import RowsByStimulus
from ml.gaze.recording import Fixations, GazeRecording, Stimulus
from ml.gaze.screen import SCREEN_SPACES, to_image

# EGD-CXR's X_ORIGINAL/Y_ORIGINAL farther than this (image px) from the mapped positions: warned.
ORIGINAL_XY_WARN_PX = 3.0
# The quality report's name for the check under the other pad convention (pads in screen px).
SCREEN_PADS = "screen_pads"


def calibration_screens(
    rec: GazeRecording,
    geometry: DisplayGeometry,
    screen_px: tuple[int, int],
    rows: RowsByStimulus | None = None,
    fixations: Fixations | None = None,
) -> list[dict]:
    """The calibration screens a recording shows (stimuli of source ``calibration``: EGD-CXR's
    ids absent from master_sheet.csv, Tobii's ``Eyetracker Calibration``), each reported.

    A screen whose target is the screen centre (EGD-CXR's dot; ``rec.meta["calibration_target"]``
    says otherwise where the export does not place its dots) is measured: the median valid gaze
    minus the centre, in px and, where the geometry allows, degrees; from at least 3 valid
    samples, or, in a fixations-only export, from the screen's fixations (``error_from``). A
    screen whose dots the export does not place (Tobii's) is reported with its valid samples and
    fixations counted.

    Args:
        rec: The recording.
        geometry: The display.
        screen_px: The screen's ``(width, height)``.
        rows: The samples' rows per stimulus, when the caller has them.
        fixations: The fixations (to count each screen's).

    Returns:
        ``[{"name", "error_px"[, "error_deg"][, "error_from"]}]`` per measured screen, ``[{"name",
        "samples", "fixations"}]`` per screen reported only.
    """
    s = rec.samples
    out = []
    centre = rec.meta.get("calibration_target", "screen centre") == "screen centre"
    for i, st in enumerate(rec.stimuli):
        if st.source != "calibration":
            continue
        sel = np.zeros(0, dtype=np.intp)
        if s is not None:
            sel = rows.rows(i) if rows is not None else np.flatnonzero(s.stimulus == i)
            sel = sel[s.valid[sel]]
        fsel = np.zeros(0, dtype=np.intp)
        if fixations is not None:
            fsel = np.flatnonzero(fixations.stimulus == i)
            fsel = fsel[np.isfinite(fixations.x[fsel]) & np.isfinite(fixations.y[fsel])]
        row: dict = {"name": printable(st.name)}
        # The gaze on the dot: the valid samples, or a fixations-only export's fixations.
        space = None
        if centre and s is not None:
            if s.space not in SCREEN_SPACES or sel.size < 3:
                continue  # too few samples to measure: not listed
            x, y, space = s.x[sel], s.y[sel], s.space
        elif centre and fsel.size and fixations.space in SCREEN_SPACES:
            x, y, space = fixations.x[fsel], fixations.y[fsel], fixations.space
            row["error_from"] = "fixations"
        if space is None:
            # Dots the export does not place (Tobii's): the screen is reported, not measured.
            row.update(samples=int(sel.size), fixations=int(fsel.size))
            out.append(row)
            continue
        if space == "screen_norm":
            x, y = x * screen_px[0], y * screen_px[1]
        mx, my = float(np.median(x)), float(np.median(y))
        cx, cy = (screen_px[0] - 1) / 2, (screen_px[1] - 1) / 2
        row["error_px"] = round(math.hypot(mx - cx, my - cy), 2)
        if geometry.has_angles:
            dx, dy = geometry.pix2deg(np.array([mx]), np.array([my]))
            row["error_deg"] = round(float(math.hypot(dx[0], dy[0])), 3)
        out.append(row)
    return out


def original_xy_errors(
    rec: GazeRecording,
    *,
    fixations: Fixations,
    fixation_rows: np.ndarray,
    sample_rows: np.ndarray | None,
    rect: ImageRect,
    image_size: tuple[int, int],
    screen_px: tuple[int, int],
) -> tuple[np.ndarray, str] | None:
    """How far the export's own image positions (EGD-CXR ``X_ORIGINAL``/``Y_ORIGINAL``, integer
    pixels of the original image, < 0 off it) lie from what the mapping computes from the screen
    positions through ``rect`` (the pad convention), in image px, for the given rows (one
    image's fixations and samples) where the export puts the point on the image.

    A pixel index is compared with its centre (``X_ORIGINAL + 0.5``). The vendor fixations' rows
    are used (their FPOG point); where the samples carry the columns too, the FPOG and the BPOG
    point are each tried and the closer one kept (the dataset does not say which one it mapped).

    Args:
        rec: The recording.
        fixations: The fixations analysed (vendor ones carry the columns; detected ones do not).
        fixation_rows, sample_rows: The image's rows of ``fixations`` and of the samples.
        rect: Where the image was drawn on the screen.
        image_size: The image's ``(width, height)``.
        screen_px: The screen's ``(width, height)``.

    Returns:
        (per-row errors, the positions that gave them), or None when the export has no such
        columns or no on-image row.
    """
    candidates: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    fx = fixations
    if "x_original" in fx.extra and fx.space in SCREEN_SPACES:
        sel = fixation_rows
        candidates.append(
            ("FPOG fixations", fx.x[sel], fx.y[sel], fx.extra["x_original"][sel],
             fx.extra["y_original"][sel])
        )  # fmt: skip
    s = rec.samples
    if (
        s is not None
        and sample_rows is not None
        and "x_original" in s.extra
        and s.space in SCREEN_SPACES
    ):
        sel = sample_rows
        xo, yo = s.extra["x_original"][sel], s.extra["y_original"][sel]
        if "fpog_x" in s.extra:
            ok = s.extra["fpog_valid"][sel] if "fpog_valid" in s.extra else np.ones(len(sel), bool)
            candidates.append(
                ("FPOG samples", np.where(ok, s.extra["fpog_x"][sel], np.nan),
                 np.where(ok, s.extra["fpog_y"][sel], np.nan), xo, yo)
            )  # fmt: skip
        ok = s.valid[sel]
        candidates.append(
            ("BPOG samples", np.where(ok, s.x[sel], np.nan), np.where(ok, s.y[sel], np.nan), xo, yo)
        )
    best: tuple[np.ndarray, str] | None = None
    for name, x, y, xo, yo in candidates:
        xo, yo = np.asarray(xo, float), np.asarray(yo, float)
        pts = to_image(x, y, space=fx.space if name.endswith("fixations") else s.space,
                       rect=rect, image_size=image_size, screen_px=screen_px)  # fmt: skip
        with np.errstate(invalid="ignore"):
            on = (xo >= 0) & (yo >= 0) & np.isfinite(pts.x) & np.isfinite(pts.y)
        if not on.any():
            continue
        err = np.hypot(pts.x[on] - (xo[on] + 0.5), pts.y[on] - (yo[on] + 0.5))
        if best is None or np.median(err) < np.median(best[0]):
            best = (err, name)
    return best


def original_xy_summary(errors: np.ndarray, from_what: str, variant: str = "") -> dict:
    """The quality report's fields of the X_ORIGINAL/Y_ORIGINAL cross-check (``variant``: the
    fields of the check under another convention, e.g. :data:`SCREEN_PADS`)."""
    name = f"original_xy_{variant}_" if variant else "original_xy_"
    out = {
        f"{name}max_error_px": round(float(np.max(errors)), 3),
        f"{name}median_error_px": round(float(np.median(errors)), 3),
    }
    if not variant:
        out.update(original_xy_checked=int(errors.size), original_xy_from=from_what)
    return out


def screen_pad_rect(stimulus: Stimulus, screen_px: tuple[int, int]) -> ImageRect | None:
    """The image's rectangle if EGD-CXR's pads were screen pixels, the image filling the rest
    of the screen (what the dataset authors' processing code assumes when it computes
    X_ORIGINAL/Y_ORIGINAL); None for a stimulus without pads."""
    p = stimulus.placement or {}
    if p.get("anchor") != "padding":
        return None
    top, bottom, left, right = (float(p[k]) for k in ("top", "bottom", "left", "right"))
    width, height = screen_px[0] - left - right, screen_px[1] - top - bottom
    if width <= 0 or height <= 0:
        return None
    return ImageRect(left, top, width, height)
