"""Simulated radiologists reading phantoms on a calibrated screen, sampled at a tracker's rate.

A reading is planned as a sequence of fixation targets in image pixels (the search strategy: a
tour of the anatomy or a glance then the finding; within each zone most fixations go to one of
the image's own conspicuous spots, the same for every reader, so that readers agree beyond the
layout that all images share; consecutive fixations at least a saccade apart), given
gamma-distributed durations, joined by saccades that follow the main sequence (duration grows with
amplitude, a smooth minimum-jerk velocity profile), interrupted by blinks, and recorded as the
tracker would: with a calibration offset, slow drift and microsaccades inside fixations, sample
noise and short losses. The intended fixations are kept as the ground truth, in image and screen
pixels.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ml.synthetic.phantom import Phantom

__all__ = [
    "BLINK",
    "FIXATION",
    "SACCADE",
    "DisplayGeometry",
    "Radiologist",
    "Reading",
    "TrueFixations",
    "View",
    "letterbox_view",
    "simulate_calibration",
    "simulate_reading",
]

FIXATION, SACCADE, BLINK = 0, 1, 2
STYLES = ("systematic", "focused")


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


@dataclass(frozen=True)
class Radiologist:
    """A simulated reader.

    Attributes:
        name: an identifier (also seeds the reader's own randomness).
        style: "systematic" (a fixed tour: right lung top to bottom, left lung, costophrenic
            angles, heart, mediastinum) or "focused" (a global glance, then straight to what looks
            abnormal).
        expertise: 0..1; experts find the finding sooner and dwell on it more, with fewer
            fixations in all.
        calibration_offset_deg: systematic tracker error (dx, dy) in degrees of visual angle.
        mean_fixation_ms: mean of the gamma distribution of fixation durations.
        fixation_shape: shape parameter k of that gamma distribution.
        n_fixations: fixations per reading; default from the style and the expertise.
        blink_rate_hz: mean blinks per second.
        off_image_probability: chance that a fixation is a glance off the image.
        precision_deg: RMS sample-to-sample noise of the tracker.
        microsaccade_rate_hz: microsaccades per second of fixation.
    """

    name: str = "R1"
    style: str = "systematic"
    expertise: float = 0.7
    calibration_offset_deg: tuple[float, float] = (0.0, 0.0)
    mean_fixation_ms: float = 280.0
    fixation_shape: float = 4.0
    n_fixations: int | None = None
    blink_rate_hz: float = 0.25
    off_image_probability: float = 0.05
    precision_deg: float = 0.04
    microsaccade_rate_hz: float = 1.2

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if not 0.0 <= self.expertise <= 1.0:
            raise ValueError(f"expertise must be within 0..1, got {self.expertise}")


@dataclass(frozen=True)
class TrueFixations:
    """The intended fixations (ground truth), one entry per fixation.

    Attributes:
        start_s: start (seconds from the reading's start; the time of its first sample).
        duration_s: duration (whole samples: n_samples / rate).
        first_sample, n_samples: the samples it covers.
        image_x, image_y: where the eye looked, in image pixels (outside the image for glances).
        screen_x, screen_y: the same point in screen pixels.
        on_image: False for glances off the image.
        target: what the reader looked at ("right_upper", "heart", "finding", "off_image", ...).
        view_index: index into ``Reading.views``.
    """

    start_s: np.ndarray
    duration_s: np.ndarray
    first_sample: np.ndarray
    n_samples: np.ndarray
    image_x: np.ndarray
    image_y: np.ndarray
    screen_x: np.ndarray
    screen_y: np.ndarray
    on_image: np.ndarray
    target: list[str]
    view_index: np.ndarray

    def __len__(self) -> int:
        return int(self.start_s.size)


@dataclass(frozen=True)
class Reading:
    """One simulated reading of one image: recorded samples plus the ground truth.

    Attributes:
        image_key: the image's key (a MIMIC-style dicom_id).
        image_width, image_height: image size in pixels.
        label: the image's label.
        reader: the Radiologist.
        geometry: the screen.
        views: what was shown, in time order (one view unless the reader zoomed).
        rate_hz: tracker sampling rate.
        t: (N,) sample times in seconds from the reading's start (i / rate).
        x, y: (N,) recorded gaze in screen pixels, NaN where invalid.
        valid: (N,) False during blinks and losses.
        pupil_mm: (N,) pupil diameter, NaN where invalid.
        event: (N,) FIXATION, SACCADE or BLINK (the true state of the eye).
        fixation_index: (N,) index of the true fixation, -1 outside fixations.
        fixations: the ground truth fixations.
        saccade_amplitude_deg, saccade_peak_velocity_deg_s: one per saccade, in order.
        blink_count: blinks in the reading.
        calibration_offset_px: the recorded-minus-true offset in screen pixels (dx, dy).
        kind: "image", or "calibration" for a calibration screen (a dot at ``dot``).
        finding_bbox: the finding's (x0, y0, x1, y1) in image pixels, or None.
        dot: the calibration dot's screen position, for calibration screens.
    """

    image_key: str
    image_width: int
    image_height: int
    label: str
    reader: Radiologist
    geometry: DisplayGeometry
    views: list[View]
    rate_hz: float
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    valid: np.ndarray
    pupil_mm: np.ndarray
    event: np.ndarray
    fixation_index: np.ndarray
    fixations: TrueFixations
    saccade_amplitude_deg: np.ndarray
    saccade_peak_velocity_deg_s: np.ndarray
    blink_count: int
    calibration_offset_px: tuple[float, float]
    kind: str = "image"
    finding_bbox: tuple[int, int, int, int] | None = None
    dot: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return float(self.t.size / self.rate_hz)

    def view_index_at(self, t: np.ndarray) -> np.ndarray:
        """Index of the view shown at each time.

        Args:
            t: times in seconds.

        Returns:
            int array of view indices.
        """
        starts = np.array([v.start_s for v in self.views])
        return np.clip(np.searchsorted(starts, np.asarray(t), side="right") - 1, 0, None)

    def samples_in_image(self) -> tuple[np.ndarray, np.ndarray]:
        """Recorded samples mapped into image pixels through the view shown at each sample.

        Returns:
            (x, y) float arrays in image pixels, NaN where the sample is invalid.
        """
        ix = np.full(self.t.size, np.nan)
        iy = np.full(self.t.size, np.nan)
        which = self.view_index_at(self.t)
        for k, view in enumerate(self.views):
            sel = which == k
            ix[sel], iy[sel] = view.screen_to_image(self.x[sel], self.y[sel])
        return ix, iy


def _reader_rng(seed: int, name: str, key: str) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process, which would break reproducibility.
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(key.encode())])


def _zones(phantom: Phantom) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """Anatomical zones as coarse pixel lists, sampled on a grid for speed."""
    step = max(1, min(phantom.height, phantom.width) // 200)
    masks = {k: m[::step, ::step] for k, m in phantom.masks.items()}
    zones: dict[str, np.ndarray] = {}
    for side in ("right", "left"):
        lung = masks[f"{side}_lung"]
        rows = np.flatnonzero(lung.any(axis=1))
        if rows.size == 0:
            continue
        top, bottom = rows[0], rows[-1]
        mid = (top + bottom) // 2
        cp = bottom - (bottom - top) // 7
        yy = np.arange(lung.shape[0])[:, None]
        zones[f"{side}_upper"] = lung & (yy < mid)
        zones[f"{side}_lower"] = lung & (yy >= mid) & (yy < cp)
        zones[f"{side}_cp"] = lung & (yy >= cp)
    zones["heart"] = masks["heart"]
    zones["mediastinum"] = masks["mediastinum"]
    zones["finding"] = masks["finding"]
    out = {}
    for name, m in zones.items():
        ys, xs = np.nonzero(m)
        if ys.size:
            out[name] = (xs * step, ys * step)
    return out, step


# Within a zone, readers are drawn to the same few conspicuous spots of the image (a vessel
# crossing, a rib end, the edge of an opacity: bottom-up saliency that every reader shares), a
# share of their fixations falling around one of them; the rest scan the zone at random.
SPOT_SHARE = 0.75
SPOTS_PER_ZONE = 2
MIN_STEP = 0.08  # of the shorter side: consecutive fixations 1.5 to 2 degrees apart at least
SPOT_SPREAD = 0.035  # of the image's shorter side: about a degree on a 24-inch screen


def _conspicuous(
    phantom: Phantom, zones: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, list[tuple[float, float]]]:
    """The conspicuous spots of each zone of this image: the same for every reader (seeded by
    the phantom, not the reader)."""
    rng = np.random.default_rng([phantom.seed, 7, zlib.crc32(phantom.label.encode())])
    out = {}
    for zone in sorted(zones):
        xs, ys = zones[zone]
        idx = rng.integers(0, xs.size, SPOTS_PER_ZONE)
        out[zone] = [(float(xs[i]), float(ys[i])) for i in idx]
    return out


def _plan_targets(
    rng: np.random.Generator,
    phantom: Phantom,
    reader: Radiologist,
    n_fix: int,
    spot_rng: np.random.Generator | None = None,
) -> tuple[list[tuple[float, float]], list[str]]:
    """The search: a list of image-pixel targets with the zone each belongs to."""
    zones, step = _zones(phantom)
    spots = _conspicuous(phantom, zones)
    spot_rng = spot_rng if spot_rng is not None else np.random.default_rng([phantom.seed, 13])
    spread = SPOT_SPREAD * min(phantom.height, phantom.width)

    def sample(zone: str, n: int, sort: bool = False) -> list[tuple[float, float]]:
        xs, ys = zones[zone]
        idx = rng.integers(0, xs.size, n)
        pts = [
            (float(xs[i] + rng.uniform(0, step)), float(ys[i] + rng.uniform(0, step))) for i in idx
        ]
        # Drawn to one of the zone's conspicuous spots instead (a stream of its own, so that
        # the rest of the reading is drawn as without spots).
        for k in range(len(pts)):
            if spot_rng.random() < SPOT_SHARE:
                sx, sy = spots[zone][int(spot_rng.integers(0, len(spots[zone])))]
                pts[k] = (
                    float(np.clip(sx + spot_rng.normal(0, spread), 0, phantom.width - 1)),
                    float(np.clip(sy + spot_rng.normal(0, spread), 0, phantom.height - 1)),
                )
        if sort:  # a systematic reader goes down a zone, not back and forth
            pts.sort(key=lambda p: p[1] + rng.normal(0, 0.02 * phantom.height))
        return pts

    has_finding = "finding" in zones
    p_find = 0.0
    if has_finding:
        p_find = 0.2 + 0.35 * reader.expertise
        p_find *= 0.8 if reader.style == "systematic" else 1.2
        p_find = min(p_find, 0.7)
    n_find = int(round(p_find * n_fix))
    n_rest = max(1, n_fix - n_find)

    if reader.style == "systematic":
        tour = [
            z
            for z in (
                "right_upper",
                "right_lower",
                "right_cp",
                "left_upper",
                "left_lower",
                "left_cp",
                "heart",
                "mediastinum",
            )
            if z in zones
        ]
        weights = np.array([3, 3, 1, 3, 3, 1, 2, 1.5][: len(tour)], dtype=float)
        counts = np.maximum(1, np.round(weights / weights.sum() * n_rest)).astype(int)
        targets: list[tuple[float, float]] = []
        names: list[str] = []
        # The finding is noticed during the tour; experts notice it earlier in the tour.
        notice = int(rng.integers(0, max(1, int(len(tour) * (1.2 - reader.expertise)))))
        first_visit = n_find // 2 if n_find else 0
        for k, (zone, c) in enumerate(zip(tour, counts, strict=True)):
            pts = sample(zone, int(c), sort=True)
            targets += pts
            names += [zone] * len(pts)
            if has_finding and k == min(notice, len(tour) - 1) and first_visit:
                targets += sample("finding", first_visit)
                names += ["finding"] * first_visit
        if has_finding and n_find - first_visit > 0:
            targets += sample("finding", n_find - first_visit)
            names += ["finding"] * (n_find - first_visit)
    else:
        center = (
            phantom.width / 2 + rng.normal(0, 0.03 * phantom.width),
            phantom.height * 0.45 + rng.normal(0, 0.03 * phantom.height),
        )
        targets, names = [center], ["overview"]
        lungs = [z for z in zones if z.endswith(("upper", "lower", "cp")) or z == "heart"]
        others = [lungs[int(i)] for i in rng.integers(0, len(lungs), max(0, n_rest - 1))]
        checks = [(*sample(z, 1)[0], z) for z in others]
        found = sample("finding", n_find) if has_finding else []
        # Straight to the finding after the overview, then checks with returns to the finding.
        lead = int(round(len(found) * (0.4 + 0.4 * reader.expertise)))
        for p in found[:lead]:
            targets.append(p)
            names.append("finding")
        rest = [(p[0], p[1], "finding") for p in found[lead:]] + checks
        order = rng.permutation(len(rest))
        for i in order:
            targets.append((rest[i][0], rest[i][1]))
            names.append(rest[i][2])
    return _apart(spot_rng, targets, MIN_STEP * min(phantom.height, phantom.width), phantom), names


def _apart(
    rng: np.random.Generator, targets: list[tuple[float, float]], step: float, phantom: Phantom
) -> list[tuple[float, float]]:
    """Targets moved so that each is at least ``step`` from the one before: two looks at one
    spot are two fixations only if a saccade separates them."""
    out: list[tuple[float, float]] = []
    for x, y in targets:
        if out:
            px, py = out[-1]
            dx, dy = x - px, y - py
            dist = math.hypot(dx, dy)
            if dist < step:
                angle = math.atan2(dy, dx) if dist > 0 else float(rng.uniform(0, 2 * math.pi))
                x = px + step * math.cos(angle)
                y = py + step * math.sin(angle)
                if not (0 <= x < phantom.width and 0 <= y < phantom.height):  # the other way
                    x, y = px - step * math.cos(angle), py - step * math.sin(angle)
        out.append(
            (float(np.clip(x, 0, phantom.width - 1)), float(np.clip(y, 0, phantom.height - 1)))
        )
    return out


def simulate_reading(
    phantom: Phantom,
    radiologist: Radiologist,
    *,
    geometry: DisplayGeometry | None = None,
    view: View | None = None,
    rate_hz: float = 60.0,
    seed: int = 0,
    image_key: str | None = None,
    zoom: bool = False,
) -> Reading:
    """Simulate one radiologist reading one phantom with an eye tracker.

    Args:
        phantom: the image read.
        radiologist: the reader.
        geometry: the screen (default a 1920 x 1080, 531 x 299 mm monitor at 650 mm).
        view: where the image is drawn (default letterboxed on the whole screen).
        rate_hz: tracker sampling rate (60 for a Gazepoint GP3, 1000 for an EyeLink).
        seed: the same seed, phantom and reader give the same reading.
        image_key: the image's key; default ``synthetic-<label>-<seed>``.
        zoom: the reader zooms 2x onto the finding (or the centre) for part of the reading, as
            REFLACX's viewer allowed; each fixation then records the view it was made in.

    Returns:
        The Reading.
    """
    geometry = geometry or DisplayGeometry()
    key = image_key or f"synthetic-{phantom.label}-{phantom.seed}"
    rng = _reader_rng(seed, radiologist.name, key)
    base = view or letterbox_view(
        phantom.width,
        phantom.height,
        geometry,
        window_width=phantom.window_width,
        window_level=phantom.window_center,
    )
    if radiologist.n_fixations is not None:
        n_fix = int(radiologist.n_fixations)
    else:
        mean = (
            (55 - 20 * radiologist.expertise)
            if radiologist.style == "systematic"
            else (35 - 10 * radiologist.expertise)
        )
        n_fix = max(5, int(rng.poisson(mean)))
    spot_rng = _reader_rng(seed, radiologist.name + "/spots", key)
    targets, names = _plan_targets(rng, phantom, radiologist, n_fix, spot_rng)
    n_fix = len(targets)

    # Views: optionally a zoomed segment in the middle of the reading.
    views = [base]
    view_of = np.zeros(n_fix, dtype=int)
    if zoom and n_fix >= 8:
        bbox = phantom.finding_bbox
        cx, cy = (
            ((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
            if bbox
            else (phantom.width / 2, phantom.height / 2)
        )
        half_w, half_h = phantom.width / 4, phantom.height / 4
        cx = float(np.clip(cx, half_w, phantom.width - half_w))
        cy = float(np.clip(cy, half_h, phantom.height - half_h))
        zoomed = View(
            (cx - half_w, cy - half_h, cx + half_w, cy + half_h),
            base.screen_rect,
            0.0,
            phantom.window_width * 0.8,
            phantom.window_center,
        )
        k0, k1 = n_fix // 3, n_fix // 3 + max(3, n_fix // 4)
        for k in range(k0, min(k1, n_fix)):
            x, y = targets[k]
            ir = zoomed.image_rect
            targets[k] = (
                float(np.clip(x, ir[0] + 1, ir[2] - 1)),
                float(np.clip(y, ir[1] + 1, ir[3] - 1)),
            )
            view_of[k] = 1
        view_of[min(k1, n_fix) :] = 2
        views += [zoomed, base]

    # Screen positions; some fixations become glances off the image.
    sx = np.empty(n_fix)
    sy = np.empty(n_fix)
    ix = np.array([p[0] for p in targets])
    iy = np.array([p[1] for p in targets])
    on_image = np.ones(n_fix, dtype=bool)
    for k in range(n_fix):
        v = views[view_of[k]]
        sx[k], sy[k] = v.image_to_screen(ix[k], iy[k])
        if k > 0 and rng.random() < radiologist.off_image_probability:
            sx[k], sy[k] = _off_image_point(rng, v, geometry)
            ix[k], iy[k] = v.screen_to_image(sx[k], sy[k])
            on_image[k] = False
            names[k] = "off_image"

    # Durations: gamma, rounded to whole samples.
    k_shape = radiologist.fixation_shape
    dur_ms = rng.gamma(k_shape, radiologist.mean_fixation_ms / k_shape, n_fix)
    n_fix_samples = np.maximum(1, np.rint(dur_ms / 1000.0 * rate_hz)).astype(int)

    ppd = geometry.pixels_per_degree()
    ppd_mean = (ppd[0] + ppd[1]) / 2
    offset_px = (
        radiologist.calibration_offset_deg[0] * ppd[0],
        radiologist.calibration_offset_deg[1] * ppd[1],
    )

    chunks_x: list[np.ndarray] = []
    chunks_y: list[np.ndarray] = []
    chunks_event: list[np.ndarray] = []
    chunks_fix: list[np.ndarray] = []
    first_sample = np.zeros(n_fix, dtype=int)
    amplitudes: list[float] = []
    peaks: list[float] = []
    blinks = 0
    pos = 0
    dt = 1.0 / rate_hz
    for k in range(n_fix):
        if k > 0:
            # Sometimes a blink, during the saccade (the eye is closed: no position).
            if rng.random() < radiologist.blink_rate_hz * (
                radiologist.mean_fixation_ms / 1000 + 0.04
            ):
                n_b = max(1, int(round(rng.lognormal(math.log(0.15), 0.3) * rate_hz)))
                chunks_x.append(np.full(n_b, np.nan))
                chunks_y.append(np.full(n_b, np.nan))
                chunks_event.append(np.full(n_b, BLINK, dtype=np.int8))
                chunks_fix.append(np.full(n_b, -1, dtype=np.int32))
                pos += n_b
                blinks += 1
            # Saccade: main sequence duration, minimum-jerk profile.
            x0, y0 = (
                chunks_x[-1 - (chunks_event[-1][0] == BLINK)][-1],
                chunks_y[-1 - (chunks_event[-1][0] == BLINK)][-1],
            )
            x0, y0 = x0 - offset_px[0], y0 - offset_px[1]
            amp_deg = math.hypot(sx[k] - x0, sy[k] - y0) / ppd_mean
            dur_s = (2.2 * amp_deg + 21.0) / 1000.0
            n_s = max(1, int(round(dur_s * rate_hz)))
            tau = (np.arange(1, n_s + 1) - 0.5) / n_s
            s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
            chunks_x.append(x0 + (sx[k] - x0) * s + offset_px[0])
            chunks_y.append(y0 + (sy[k] - y0) * s + offset_px[1])
            chunks_event.append(np.full(n_s, SACCADE, dtype=np.int8))
            chunks_fix.append(np.full(n_s, -1, dtype=np.int32))
            pos += n_s
            amplitudes.append(amp_deg)
            peaks.append(1.875 * amp_deg / dur_s)
        n = int(n_fix_samples[k])
        first_sample[k] = pos
        # Inside a fixation: slow drift, occasional microsaccades, tracker noise (all in degrees).
        drift = np.cumsum(rng.normal(0, 0.012 * math.sqrt(1000 * dt / 4), (n, 2)), axis=0)
        micro = np.zeros((n, 2))
        n_micro = rng.poisson(radiologist.microsaccade_rate_hz * n * dt)
        for start in rng.integers(0, n, n_micro):
            ang = rng.uniform(0, 2 * math.pi)
            micro[start:] += rng.uniform(0.1, 0.35) * np.array([math.cos(ang), math.sin(ang)])
        micro -= micro.mean(axis=0)  # the fixation's centre stays on the target
        drift -= drift.mean(axis=0)
        noise = rng.normal(0, radiologist.precision_deg, (n, 2))
        wobble = drift + micro + noise
        chunks_x.append(sx[k] + offset_px[0] + wobble[:, 0] * ppd[0])
        chunks_y.append(sy[k] + offset_px[1] + wobble[:, 1] * ppd[1])
        chunks_event.append(np.full(n, FIXATION, dtype=np.int8))
        chunks_fix.append(np.full(n, k, dtype=np.int32))
        pos += n

    x = np.concatenate(chunks_x)
    y = np.concatenate(chunks_y)
    event = np.concatenate(chunks_event)
    fixation_index = np.concatenate(chunks_fix)
    n_total = x.size
    t = np.arange(n_total) / rate_hz
    valid = event != BLINK
    # Short tracking losses (a glint lost for a few samples).
    for start in np.flatnonzero(rng.random(n_total) < 0.15 / rate_hz):
        valid[start : start + int(rng.integers(1, 4))] = False
    x[~valid] = np.nan
    y[~valid] = np.nan
    base_pupil = rng.uniform(3.0, 4.5)
    pupil = (
        base_pupil + 0.3 * np.sin(2 * np.pi * t / rng.uniform(6, 12)) + rng.normal(0, 0.02, n_total)
    )
    pupil[~valid] = np.nan

    # The views switch at the start of the saccade into their first fixation.
    timed_views = [views[0]]
    for v_index in range(1, len(views)):
        first = int(np.flatnonzero(view_of == v_index)[0]) if (view_of == v_index).any() else None
        if first is None:
            continue
        start = first_sample[first]
        j = start - 1
        while j >= 0 and event[j] != FIXATION:
            j -= 1
        v = views[v_index]
        timed_views.append(
            View(
                v.image_rect,
                v.screen_rect,
                float((j + 1) / rate_hz),
                v.window_width,
                v.window_level,
            )
        )

    fixations = TrueFixations(
        start_s=first_sample / rate_hz,
        duration_s=n_fix_samples / rate_hz,
        first_sample=first_sample,
        n_samples=n_fix_samples,
        image_x=ix,
        image_y=iy,
        screen_x=sx,
        screen_y=sy,
        on_image=on_image,
        target=names,
        view_index=view_of,
    )
    return Reading(
        image_key=key,
        image_width=phantom.width,
        image_height=phantom.height,
        label=phantom.label,
        reader=radiologist,
        geometry=geometry,
        views=timed_views,
        rate_hz=float(rate_hz),
        t=t,
        x=x,
        y=y,
        valid=valid,
        pupil_mm=pupil,
        event=event,
        fixation_index=fixation_index,
        fixations=fixations,
        saccade_amplitude_deg=np.array(amplitudes),
        saccade_peak_velocity_deg_s=np.array(peaks),
        blink_count=blinks,
        calibration_offset_px=offset_px,
        finding_bbox=phantom.finding_bbox,
    )


def _off_image_point(
    rng: np.random.Generator, view: View, geometry: DisplayGeometry
) -> tuple[float, float]:
    """A point on the screen outside the drawn image (a letterbox margin, or the screen edge)."""
    x0, y0, x1, y1 = view.screen_rect
    W, H = geometry.screen_width_px, geometry.screen_height_px
    margins = []
    if x0 > 40:
        margins.append((rng.uniform(5, x0 - 20), rng.uniform(50, H - 50)))
    if W - x1 > 40:
        margins.append((rng.uniform(x1 + 20, W - 5), rng.uniform(50, H - 50)))
    if not margins:  # the image fills the width: look at the toolbar above or below it
        margins.append((rng.uniform(50, W - 50), max(5.0, y0 - 15.0)))
    return margins[int(rng.integers(len(margins)))]


def simulate_calibration(
    radiologist: Radiologist,
    *,
    geometry: DisplayGeometry | None = None,
    rate_hz: float = 60.0,
    seed: int = 0,
    key: str = "calibration",
    duration_s: float = 2.0,
) -> Reading:
    """A calibration screen: the reader looks at a dot at the screen centre.

    The recorded gaze sits at the dot plus the reader's calibration offset, so a platform can
    estimate that offset from these screens (as EGD-CXR's calibration images allow).

    Args:
        radiologist: the reader.
        geometry: the screen.
        rate_hz: tracker rate.
        seed: seeds the noise.
        key: the screen's key (EGD-CXR gives calibration screens their own DICOM_ID).
        duration_s: how long the dot is shown.

    Returns:
        A Reading of kind "calibration", whose "image" is the screen itself.
    """
    geometry = geometry or DisplayGeometry()
    rng = _reader_rng(seed, radiologist.name, key)
    W, H = geometry.screen_width_px, geometry.screen_height_px
    dot = (W / 2.0, H / 2.0)
    ppd = geometry.pixels_per_degree()
    offset_px = (
        radiologist.calibration_offset_deg[0] * ppd[0],
        radiologist.calibration_offset_deg[1] * ppd[1],
    )
    n = max(1, int(round(duration_s * rate_hz)))
    noise = rng.normal(0, radiologist.precision_deg, (n, 2))
    x = dot[0] + offset_px[0] + noise[:, 0] * ppd[0]
    y = dot[1] + offset_px[1] + noise[:, 1] * ppd[1]
    t = np.arange(n) / rate_hz
    view = View((0.0, 0.0, float(W), float(H)), (0.0, 0.0, float(W), float(H)))
    fixations = TrueFixations(
        start_s=np.array([0.0]),
        duration_s=np.array([n / rate_hz]),
        first_sample=np.array([0]),
        n_samples=np.array([n]),
        image_x=np.array([dot[0]]),
        image_y=np.array([dot[1]]),
        screen_x=np.array([dot[0]]),
        screen_y=np.array([dot[1]]),
        on_image=np.array([True]),
        target=["calibration_dot"],
        view_index=np.array([0]),
    )
    return Reading(
        image_key=key,
        image_width=W,
        image_height=H,
        label="",
        reader=radiologist,
        geometry=geometry,
        views=[view],
        rate_hz=float(rate_hz),
        t=t,
        x=x,
        y=y,
        valid=np.ones(n, dtype=bool),
        pupil_mm=np.full(n, 3.5) + rng.normal(0, 0.02, n),
        event=np.zeros(n, dtype=np.int8),
        fixation_index=np.zeros(n, dtype=np.int32),
        fixations=fixations,
        saccade_amplitude_deg=np.array([]),
        saccade_peak_velocity_deg_s=np.array([]),
        blink_count=0,
        calibration_offset_px=offset_px,
        kind="calibration",
        dot=dot,
    )
