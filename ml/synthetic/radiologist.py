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

from ml.synthetic.display import DisplayGeometry, View, letterbox_view
from ml.synthetic.phantom import Phantom
from ml.synthetic.search import plan_targets

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
    targets, names = plan_targets(rng, phantom, radiologist, n_fix, spot_rng)
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
