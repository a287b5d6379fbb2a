"""Display geometry: screen pixels to degrees of visual angle.

The conversion is pymovements' ``pix2deg`` (per axis: ``atan(offset_px / distance_px)`` with the
offset measured from the screen centre ``(size - 1) / 2``), so thresholds in degrees mean the same
here and there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DisplayGeometry:
    """Where the reader's eyes were relative to the screen.

    Attributes:
        screen_px: (width, height) of the display in pixels.
        screen_mm: (width, height) of its visible area in millimetres (None: unknown).
        distance_mm: Eye-to-screen distance in millimetres (None: unknown).
    """

    screen_px: tuple[int, int]
    screen_mm: tuple[float, float] | None = None
    distance_mm: float | None = None

    @property
    def has_angles(self) -> bool:
        """Whether degrees of visual angle can be computed."""
        return self.screen_mm is not None and self.distance_mm is not None

    def _distance_px(self) -> np.ndarray:
        if not self.has_angles:
            raise ValueError(
                "degrees of visual angle need the screen size in mm and the viewing distance"
            )
        px = np.asarray(self.screen_px, dtype=np.float64)
        mm = np.asarray(self.screen_mm, dtype=np.float64)
        return float(self.distance_mm) * px / mm

    def pix2deg(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Screen px (origin top left) to degrees from the screen centre, per axis.

        Args:
            x, y: Positions in screen pixels.

        Returns:
            (x_deg, y_deg), same shapes.
        """
        d = self._distance_px()
        w, h = self.screen_px
        xd = np.degrees(np.arctan2(np.asarray(x, float) - (w - 1) / 2, d[0]))
        yd = np.degrees(np.arctan2(np.asarray(y, float) - (h - 1) / 2, d[1]))
        return xd, yd

    @property
    def px_per_deg(self) -> float:
        """Pixels per degree at the screen centre (mean of both axes)."""
        d = self._distance_px()
        return float(np.mean(d * math.tan(math.radians(1.0))))
