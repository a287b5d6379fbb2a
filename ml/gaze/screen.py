"""The screen a reading was made on: where each image was drawn, positions moved between the
screen and the image, and pixels per degree of visual angle.

Sizes are ``(width, height)`` in pixels, as everywhere in :mod:`ml.gaze`; a rectangle is an
:class:`~ml.gaze.mapping.ImageRect` in screen pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.gaze.geometry import DisplayGeometry
from ml.gaze.mapping import ImagePoints, ImageRect, map_to_image
from ml.gaze.quality import RowsByStimulus
from ml.gaze.recording import Samples, Stimulus

# Pixels per degree assumed when a session gives no physical geometry (a 24" 1920 px monitor at
# 65 cm); detection thresholds in degrees are converted with it, and the parse report says so.
FALLBACK_PX_PER_DEG = 41.0
# Coordinate spaces that are positions on the screen (mapped to the image through its rectangle).
SCREEN_SPACES = ("screen_px", "screen_norm")
# Coordinate spaces that are fractions of the image itself (a media or a tracked surface).
IMAGE_FRACTION_SPACES = ("media_norm", "surface_norm")
PLACEMENT_MODES = ("auto", "fit", "rect")


@dataclass(frozen=True)
class Placement:
    """How a session places its images on the screen.

    Attributes:
        mode: ``"rect"``: every image in ``rect``; ``"auto"``: where the export says it drew the
            image (EyeLink IMGLOAD, EGD-CXR padding, Tobii media position), else fitted;
            ``"fit"``: the largest centred rectangle of the image's aspect ratio inside the
            screen less ``padding_px`` on each side.
        rect: The rectangle of mode ``"rect"``.
        padding_px: Screen pixels kept free on each side of a fitted image.
    """

    mode: str = "auto"
    rect: ImageRect | None = None
    padding_px: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in PLACEMENT_MODES:
            raise ValueError(f"placement mode must be one of {PLACEMENT_MODES}, not {self.mode!r}")
        if self.mode == "rect" and self.rect is None:
            raise ValueError("a 'rect' placement needs its rectangle")


def image_rect(
    placement: Placement,
    *,
    stimulus: Stimulus | None,
    image_size: tuple[int, int],
    screen_px: tuple[int, int],
) -> ImageRect:
    """Where an image was drawn on the screen.

    Args:
        placement: The session's placement.
        stimulus: The stimulus the image was shown as (its ``placement`` is the export's own
            statement of where it drew it), or None.
        image_size: The image's ``(width, height)``.
        screen_px: The screen's ``(width, height)``.
    """
    if placement.mode == "rect":
        return placement.rect
    stated = stimulus.placement if stimulus is not None else None
    # EGD-CXR's pads are original-image pixels: ImageRect.from_padding says why.
    if (
        placement.mode == "auto"
        and stated
        and (stated.get("anchor") in ("padding", "fill") or stated.get("x") is not None)
    ):
        return ImageRect.from_placement(stated, image_size, screen_px)
    pad = placement.padding_px
    inner = ImageRect.fit((screen_px[0] - 2 * pad, screen_px[1] - 2 * pad), image_size)
    return ImageRect(inner.left + pad, inner.top + pad, inner.width, inner.height)


def to_image(
    x: np.ndarray,
    y: np.ndarray,
    *,
    space: str,
    rect: ImageRect,
    image_size: tuple[int, int],
    screen_px: tuple[int, int],
) -> ImagePoints:
    """Positions in ``space`` to image pixels: through ``rect`` for screen positions, by the
    image's own size for the other spaces (:func:`ml.gaze.mapping.map_to_image`)."""
    return map_to_image(
        x, y, space=space, image_size=image_size, rect=rect if space in SCREEN_SPACES else None,
        screen_px=screen_px,
    )  # fmt: skip


def image_fractions_on_screen(
    samples: Samples,
    stimuli: list[Stimulus],
    *,
    placement: Placement,
    screen_px: tuple[int, int],
    image_sizes: dict[int, tuple[int, int]],
) -> Samples:
    """Samples in fractions of their image, placed in screen pixels through each stimulus's
    image rectangle (:func:`image_rect`).

    Args:
        samples: Samples in an image-fraction space (``media_norm``, ``surface_norm``).
        stimuli: The recording's stimuli (``samples.stimulus`` indexes them).
        placement: The session's placement.
        screen_px: The screen's ``(width, height)``.
        image_sizes: The image size of each matched stimulus, by stimulus index; a stimulus
            without one (unmatched), and samples of no stimulus, take a square as tall as the
            screen.

    Returns:
        The samples in ``screen_px``.
    """
    s = samples
    assumed = (screen_px[1], screen_px[1])
    left = np.zeros(len(s))
    top = np.zeros(len(s))
    width = np.full(len(s), float(assumed[0]))
    height = np.full(len(s), float(assumed[1]))
    rows = RowsByStimulus(s.stimulus, len(stimuli))
    for i, stimulus in enumerate(stimuli):
        sel = rows.rows(i)
        if not sel.size:
            continue
        r = image_rect(
            placement, stimulus=stimulus, image_size=image_sizes.get(i, assumed),
            screen_px=screen_px,
        )  # fmt: skip
        left[sel], top[sel], width[sel], height[sel] = r.left, r.top, r.width, r.height
    return Samples(
        s.time_ms, left + s.x * width, top + s.y * height, s.valid, s.pupil, s.stimulus, s.line,
        "screen_px",
    )  # fmt: skip


def fallback_px_per_deg(space: str, screen_px: tuple[int, int]) -> tuple[float, float]:
    """The assumed pixels per degree (:data:`FALLBACK_PX_PER_DEG`), per axis, in the units of
    ``space``: screen fractions for ``screen_norm``, pixels otherwise."""
    sw, sh = screen_px if space == "screen_norm" else (1, 1)
    return FALLBACK_PX_PER_DEG / sw, FALLBACK_PX_PER_DEG / sh


def image_px_per_screen_px(rect: ImageRect, image_size: tuple[int, int]) -> float:
    """Image pixels per screen pixel of an image drawn in ``rect`` (mean of both axes)."""
    width, height = image_size
    return 0.5 * (width / rect.width + height / rect.height)


def degree_in_image_px(
    geometry: DisplayGeometry, rect: ImageRect, image_size: tuple[int, int]
) -> tuple[float, bool]:
    """One degree of visual angle in image pixels, for an image drawn in ``rect``.

    From the geometry's pixels per degree at the screen centre where it has the screen size in
    mm and the viewing distance (what ``ml.saliency_maps.sigma_px_for_degrees`` gives for one
    degree), else from :data:`FALLBACK_PX_PER_DEG`.

    Args:
        geometry: The display.
        rect: Where the image was drawn on screen.
        image_size: The image's ``(width, height)``.

    Returns:
        (image pixels, whether they come from the geometry rather than the assumption).
    """
    scale = image_px_per_screen_px(rect, image_size)
    if geometry.has_angles:
        return float(geometry.px_per_deg * scale), True
    return FALLBACK_PX_PER_DEG * scale, False
