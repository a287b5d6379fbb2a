"""Screen-to-image mapping, and matching stimuli to images by key.

Three ways a position reaches image pixels:

1. through the session geometry: the image drawn in a rectangle of the screen (given, computed
   to "fit" with letterbox padding, or from EGD-CXR's ``image_*_pad`` columns, which are in
   original-image pixels: :meth:`ImageRect.from_padding`);
2. through per-row viewer rectangles (REFLACX: the part of the image shown, and where on screen);
3. already in image pixels (identity; only the on-image flag is computed).

Off-image points are kept (with their coordinates outside the image) and flagged.
Pixel convention: continuous coordinates, pixel i covers [i, i + 1); a screen rectangle
(left, top, width, height) maps linearly onto [0, image_w) x [0, image_h).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.gaze.recording import GazeFormatError, Stimulus


@dataclass(frozen=True)
class ImageRect:
    """Where the image was drawn on screen, in screen pixels."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def fit(cls, screen_px: tuple[int, int], image_size: tuple[int, int]) -> ImageRect:
        """The largest centred rectangle with the image's aspect ratio (letterbox/pillarbox).

        Args:
            screen_px: (width, height) of the screen.
            image_size: (width, height) of the image.
        """
        sw, sh = screen_px
        iw, ih = image_size
        scale = min(sw / iw, sh / ih)
        w, h = iw * scale, ih * scale
        return cls((sw - w) / 2, (sh - h) / 2, w, h)

    @classmethod
    def from_padding(
        cls,
        screen_px: tuple[int, int],
        image_size: tuple[int, int],
        *,
        top: float,
        bottom: float,
        left: float,
        right: float,
    ) -> ImageRect:
        """The image's rectangle from EGD-CXR's ``image_*_pad`` (master_sheet.csv).

        Units, settled here and nowhere else: the pads are in **original-image pixels**. EGD-CXR
        padded each original DICOM image with ``left``/``right`` (or ``top``/``bottom``) margins
        to the screen's aspect ratio, then scaled the padded image to fill the 1920 x 1080
        screen. So the padded image is ``(w + left + right) x (h + top + bottom)`` original
        pixels, the scale is ``screen / padded``, and ``X_ORIGINAL = FPOGX * (w + left + right)
        - left`` (the synthetic writer ``ml.synthetic.writers.egd_cxr`` writes them the same
        way). When the padded shape misses the screen's aspect ratio (integer rounding, or an
        odd file), the padded image is fitted (centred, letterboxed) like any other image.

        Args:
            screen_px: (width, height) of the screen.
            image_size: (width, height) of the original image, in pixels.
            top, bottom, left, right: The pads, in original-image pixels.

        Raises:
            ValueError: negative pads, or an image without a size.
        """
        iw, ih = image_size
        if min(top, bottom, left, right) < 0:
            raise ValueError("image padding cannot be negative")
        if iw <= 0 or ih <= 0:
            raise ValueError("the image needs a size to place its padding")
        padded = cls.fit(screen_px, (iw + left + right, ih + top + bottom))
        scale = padded.width / (iw + left + right)
        return cls(padded.left + left * scale, padded.top + top * scale, iw * scale, ih * scale)

    @classmethod
    def from_placement(
        cls,
        placement: dict[str, Any],
        image_size: tuple[int, int],
        screen_px: tuple[int, int] | None = None,
    ) -> ImageRect:
        """The rectangle a reader's ``Stimulus.placement`` describes.

        Args:
            placement: ``anchor`` ``top_left``/``center`` with x, y (and width/height, else the
                image's own size: EyeLink IMGLOAD draws at native size), ``fill`` (the whole
                screen), or ``padding`` with top/bottom/left/right in original-image pixels
                (see :meth:`from_padding`).
            image_size: The image's (width, height).
            screen_px: The screen size (needed for ``fill`` and ``padding``).
        """
        anchor = placement.get("anchor")
        if anchor in ("fill", "padding") and screen_px is None:
            raise ValueError(f"a {anchor!r} placement needs the screen size")
        if anchor == "fill":
            return cls(0.0, 0.0, float(screen_px[0]), float(screen_px[1]))
        if anchor == "padding":
            return cls.from_padding(
                screen_px,
                image_size,
                **{k: float(placement[k]) for k in ("top", "bottom", "left", "right")},
            )
        w = placement.get("width") or image_size[0]
        h = placement.get("height") or image_size[1]
        x, y = placement["x"], placement["y"]
        if anchor == "center":
            return cls(x - w / 2, y - h / 2, float(w), float(h))
        return cls(float(x), float(y), float(w), float(h))


@dataclass
class ImagePoints:
    """Positions in image pixels with the on-image flag (off-image points are kept)."""

    x: np.ndarray
    y: np.ndarray
    on_image: np.ndarray


def to_screen_px(
    x: np.ndarray, y: np.ndarray, space: str, screen_px: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Screen positions in pixels from ``screen_px`` or ``screen_norm`` coordinates.

    Raises:
        GazeFormatError: for spaces that are not the screen (HREF, camera, media, image), or a
            normalised space without the screen size.
    """
    if space == "screen_px":
        return np.asarray(x, float), np.asarray(y, float)
    if space == "screen_norm":
        if screen_px is None:
            raise GazeFormatError("screen fractions need the screen size in pixels")
        return np.asarray(x, float) * screen_px[0], np.asarray(y, float) * screen_px[1]
    if space == "href":
        raise GazeFormatError(
            "HREF samples are head-referenced angles, not screen positions: they cannot be "
            "mapped to an image (export GAZE samples with edf2asc)"
        )
    if space == "camera_norm":
        raise GazeFormatError(
            "world-camera positions move with the head: map them with surface tracking first"
        )
    raise GazeFormatError(f"positions in {space} are not screen positions")


def _flag(ix: np.ndarray, iy: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (ix >= 0) & (ix < image_size[0]) & (iy >= 0) & (iy < image_size[1])


def map_to_image(
    x: np.ndarray,
    y: np.ndarray,
    *,
    space: str,
    image_size: tuple[int, int],
    rect: ImageRect | None = None,
    screen_px: tuple[int, int] | None = None,
) -> ImagePoints:
    """Map positions into image pixels.

    Args:
        x, y: Positions in ``space``.
        space: ``screen_px``/``screen_norm`` (need ``rect``), ``image_px`` (identity),
            ``media_norm``/``surface_norm`` (the media/surface *is* the image: scaled by its
            size), ``media_px`` (media pixels = image pixels).
        image_size: The image's (width, height) in pixels.
        rect: Where the image was drawn on screen (screen spaces only).
        screen_px: Screen size (for ``screen_norm``).

    Returns:
        :class:`ImagePoints`; points outside the image keep their coordinates, flagged False.

    Raises:
        GazeFormatError: for unmappable spaces (HREF, camera) or missing geometry.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    iw, ih = image_size
    if space == "image_px" or space == "media_px":
        ix, iy = x, y
    elif space in ("media_norm", "surface_norm"):
        ix, iy = x * iw, y * ih
    else:
        sx, sy = to_screen_px(x, y, space, screen_px)
        if rect is None:
            raise GazeFormatError("screen positions need the image's rectangle on screen")
        ix = (sx - rect.left) * (iw / rect.width)
        iy = (sy - rect.top) * (ih / rect.height)
    return ImagePoints(ix, iy, _flag(ix, iy, image_size))


def map_viewer_rects(
    sx: np.ndarray,
    sy: np.ndarray,
    shown: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    screen: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    image_size: tuple[int, int],
) -> tuple[ImagePoints, np.ndarray]:
    """Map screen px to image px through per-row viewer rectangles (zoom and pan).

    Args:
        sx, sy: Screen positions (px).
        shown: (xmin, ymin, xmax, ymax) of the image region shown, per row, in image px
            (REFLACX ``*_shown_from_image``).
        screen: (xmin, ymin, xmax, ymax) where that region was drawn, per row, in screen px
            (REFLACX ``*_in_screen_coordinates``).
        image_size: The image's (width, height).

    Returns:
        (points, in_view): image positions with the on-image flag, and whether each point
        fell inside the region shown on screen at that moment.
    """
    x0, y0, x1, y1 = (np.asarray(a, float) for a in shown)
    u0, v0, u1, v1 = (np.asarray(a, float) for a in screen)
    ix = x0 + (np.asarray(sx, float) - u0) * (x1 - x0) / (u1 - u0)
    iy = y0 + (np.asarray(sy, float) - v0) * (y1 - y0) / (v1 - v0)
    with np.errstate(invalid="ignore"):
        in_view = (sx >= u0) & (sx < u1) & (sy >= v0) & (sy < v1)
    return ImagePoints(ix, iy, _flag(ix, iy, image_size)), in_view


def in_viewer_rect(ix: np.ndarray, iy: np.ndarray, shown: tuple[np.ndarray, ...]) -> np.ndarray:
    """Whether image positions lie in the region that was shown (REFLACX positions are image px
    already; this flags the points the reader could not have been looking at in the image)."""
    x0, y0, x1, y1 = (np.asarray(a, float) for a in shown)
    with np.errstate(invalid="ignore"):
        return (ix >= x0) & (ix < x1) & (iy >= y0) & (iy < y1)


@dataclass
class StimulusMatch:
    """Which stimuli name which images.

    Attributes:
        matched: stimulus index -> image key.
        unmatched: names of stimuli that matched no image (each name once, in file order).
    """

    matched: dict[int, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


def match_stimuli(
    stimuli: list[Stimulus], image_keys: list[str] | set[str], *, skip_sources: tuple = ()
) -> StimulusMatch:
    """Match stimuli to images by key: exact name, then key (file stem), then case-insensitive.

    Args:
        stimuli: A recording's stimuli.
        image_keys: The lab's image keys (e.g. MIMIC dicom_ids, file stems).
        skip_sources: Stimulus sources to leave out of both lists (e.g. ``("calibration",)``).

    Returns:
        A :class:`StimulusMatch` with the names that matched nothing listed once each.
    """
    keys = set(image_keys)
    lower = {k.lower(): k for k in keys}
    out = StimulusMatch()
    seen: set[str] = set()
    for i, s in enumerate(stimuli):
        if s.source in skip_sources:
            continue
        hit = s.name if s.name in keys else s.key if s.key in keys else lower.get(s.key.lower())
        if hit is not None:
            out.matched[i] = hit
        elif s.name not in seen:
            seen.add(s.name)
            out.unmatched.append(s.name)
    return out
