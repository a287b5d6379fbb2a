"""The screen a simulated radiologist reads on: its size and the viewer's distance
(pixels per degree anywhere on it), and the views that place an image on it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DisplayGeometry", "View", "letterbox_view"]


@dataclass(frozen=True)
class DisplayGeometry:
    """The physical screen and the viewer's distance to it.

    Attributes:
        screen_width_px, screen_height_px: resolution.
        screen_width_mm, screen_height_mm: visible size (default a 24-inch 16:9 monitor).
        viewing_distance_mm: eye to screen centre.
    """

    screen_width_px: int = 1920
    screen_height_px: int = 1080
    screen_width_mm: float = 531.0
    screen_height_mm: float = 299.0
    viewing_distance_mm: float = 650.0

    def pixels_per_degree(
        self, x: float | None = None, y: float | None = None
    ) -> tuple[float, float]:
        """Screen pixels per degree of visual angle at a screen position (default the centre).

        Args:
            x, y: screen pixels.

        Returns:
            (horizontal, vertical) pixels per degree; larger off-centre, where the screen is
            further from the eye and seen obliquely, so one degree spans more pixels.
        """
        x = self.screen_width_px / 2 if x is None else x
        y = self.screen_height_px / 2 if y is None else y
        mm_x = self.screen_width_mm / self.screen_width_px
        mm_y = self.screen_height_mm / self.screen_height_px
        d = self.viewing_distance_mm
        ux = (x - self.screen_width_px / 2) * mm_x
        uy = (y - self.screen_height_px / 2) * mm_y
        # d(theta)/du = d / (d^2 + u^2): convert to px per degree.
        per_deg_x = (d * d + ux * ux) / d * math.pi / 180.0 / mm_x
        per_deg_y = (d * d + uy * uy) / d * math.pi / 180.0 / mm_y
        return float(per_deg_x), float(per_deg_y)


@dataclass(frozen=True)
class View:
    """What the viewer shows from a time on: an image rectangle drawn into a screen rectangle.

    Attributes:
        image_rect: (xmin, ymin, xmax, ymax) of the image shown, in image pixels.
        screen_rect: (xmin, ymin, xmax, ymax) where it is drawn, in screen pixels.
        start_s: when this view starts (seconds from the reading's start).
        window_width, window_level: the display window (stored-value units).
    """

    image_rect: tuple[float, float, float, float]
    screen_rect: tuple[float, float, float, float]
    start_s: float = 0.0
    window_width: float = 4096.0
    window_level: float = 2048.0

    @property
    def scale(self) -> float:
        """Screen pixels per image pixel."""
        return (self.screen_rect[2] - self.screen_rect[0]) / (
            self.image_rect[2] - self.image_rect[0]
        )

    def image_to_screen(self, x: np.ndarray | float, y: np.ndarray | float):
        """Map image pixels to screen pixels.

        Args:
            x, y: image pixel coordinates (arrays or floats).

        Returns:
            (x, y) in screen pixels.
        """
        s = self.scale
        return (
            self.screen_rect[0] + (np.asarray(x) - self.image_rect[0]) * s,
            self.screen_rect[1] + (np.asarray(y) - self.image_rect[1]) * s,
        )

    def screen_to_image(self, x: np.ndarray | float, y: np.ndarray | float):
        """Map screen pixels to image pixels (the inverse of ``image_to_screen``).

        Args:
            x, y: screen pixel coordinates.

        Returns:
            (x, y) in image pixels (outside the image where the point is off it).
        """
        s = self.scale
        return (
            self.image_rect[0] + (np.asarray(x) - self.screen_rect[0]) / s,
            self.image_rect[1] + (np.asarray(y) - self.screen_rect[1]) / s,
        )


def letterbox_view(
    image_width: int,
    image_height: int,
    geometry: DisplayGeometry,
    *,
    area: tuple[float, float, float, float] | None = None,
    start_s: float = 0.0,
    window_width: float = 4096.0,
    window_level: float = 2048.0,
) -> View:
    """The whole image, scaled to fit ``area`` (default the screen) and centred (letterboxed).

    Args:
        image_width, image_height: image size in pixels.
        geometry: the screen.
        area: (xmin, ymin, xmax, ymax) of the screen area the viewer draws into.
        start_s: when the view starts.
        window_width, window_level: display window.

    Returns:
        The View.
    """
    ax0, ay0, ax1, ay1 = area or (
        0.0,
        0.0,
        float(geometry.screen_width_px),
        float(geometry.screen_height_px),
    )
    scale = min((ax1 - ax0) / image_width, (ay1 - ay0) / image_height)
    w, h = image_width * scale, image_height * scale
    x0 = ax0 + ((ax1 - ax0) - w) / 2
    y0 = ay0 + ((ay1 - ay0) - h) / 2
    return View(
        (0.0, 0.0, float(image_width), float(image_height)),
        (x0, y0, x0 + w, y0 + h),
        start_s,
        window_width,
        window_level,
    )
