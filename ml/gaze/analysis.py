"""From a read recording to per-image readings: choose or detect the fixations, map them into
each image, grade the data; nothing is stored here (the caller stores :class:`Analysis`).

>>> setup = ReadingSetup(screen_px=(1920, 1080), screen_mm=(527, 296), distance_mm=650)
>>> out = analyse_recording(rec, setup, images={"p10_s5": (2500, 3000)})
>>> [(r.key, len(r.duration), r.quality["grade"]) for r in out.readings]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ml.gaze.checks import (
    ORIGINAL_XY_WARN_PX,
    SCREEN_PADS,
    calibration_screens,
    original_xy_errors,
    original_xy_summary,
    screen_pad_rect,
)
from ml.gaze.detection import IDTConfig, IVTConfig, detect_fixations
from ml.gaze.formats._labels import printable
from ml.gaze.geometry import DisplayGeometry
from ml.gaze.mapping import match_stimuli
from ml.gaze.quality import QualityThresholds, RowsByStimulus, quality_report
from ml.gaze.recording import Fixations, GazeFormatError, GazeRecording, Samples, Stimulus
from ml.gaze.screen import (
    FALLBACK_PX_PER_DEG,
    IMAGE_FRACTION_SPACES,
    SCREEN_SPACES,
    Placement,
    fallback_px_per_deg,
    image_fractions_on_screen,
    image_rect,
    to_image,
)

DETECTION_MODES = ("auto", "ivt", "idt")
# Dropped fixations listed stimulus by stimulus in the quality report (the count covers all).
DROPPED_LISTED = 50


def detection_config(
    method: str,
    *,
    velocity_deg_s: float | None = None,
    dispersion_deg: float | None = None,
    min_duration_ms: float | None = None,
) -> IVTConfig | IDTConfig:
    """I-DT parameters for ``method`` ``"idt"``, else I-VT's; the defaults where none is given."""
    if method == "idt":
        cfg = IDTConfig()
        return IDTConfig(
            dispersion_threshold=dispersion_deg or cfg.dispersion_threshold,
            min_duration_ms=min_duration_ms or cfg.min_duration_ms,
        )
    cfg = IVTConfig()
    return IVTConfig(
        velocity_threshold=velocity_deg_s or cfg.velocity_threshold,
        min_duration_ms=min_duration_ms or cfg.min_duration_ms,
    )


@dataclass(frozen=True)
class ReadingSetup:
    """What a session says about how its recordings were made.

    Attributes:
        screen_px: The screen's ``(width, height)`` (an export that states its own wins).
        screen_mm: Its visible size in mm, or None.
        distance_mm: The eye-to-screen distance in mm, or None.
        placement: Where images were drawn (:class:`ml.gaze.screen.Placement`).
        detection: ``"auto"``: vendor fixations where the export has them, else I-VT;
            ``"ivt"`` / ``"idt"``: always detected from the samples.
        config: The detection parameters (default: :func:`detection_config`'s for the method).
        rate_hz: The declared sampling rate, or None (detection measures it).
    """

    screen_px: tuple[int, int]
    screen_mm: tuple[float, float] | None = None
    distance_mm: float | None = None
    placement: Placement = field(default_factory=Placement)
    detection: str = "auto"
    config: IVTConfig | IDTConfig | None = None
    rate_hz: float | None = None

    def __post_init__(self) -> None:
        if self.detection not in DETECTION_MODES:
            raise ValueError(f"detection must be one of {DETECTION_MODES}, not {self.detection!r}")

    def geometry(self, screen_px: tuple[int, int] | None = None) -> DisplayGeometry:
        """The display (``screen_px``: the export's own screen size, where it states one)."""
        return DisplayGeometry(
            screen_px=screen_px or self.screen_px,
            screen_mm=self.screen_mm,
            distance_mm=self.distance_mm,
        )

    def detection_config(self) -> IVTConfig | IDTConfig:
        return self.config if self.config is not None else detection_config(self.detection)


def in_sample_units(fx: Fixations, s: Samples) -> Fixations:
    """Detected fixations with their positions in the samples' own units: the mean of the
    fixation's valid samples (NaN where it has none)."""
    t = s.time_ms
    xs, ys = np.empty(len(fx)), np.empty(len(fx))
    for k in range(len(fx)):
        a = np.searchsorted(t, fx.start_ms[k], side="left")
        b = np.searchsorted(t, fx.start_ms[k] + fx.duration_ms[k] - 1e-6, side="left")
        sel = slice(a, max(b, a + 1))
        ok = s.valid[sel]
        xs[k] = np.nanmean(s.x[sel][ok]) if ok.any() else np.nan
        ys[k] = np.nanmean(s.y[sel][ok]) if ok.any() else np.nan
    return Fixations(fx.start_ms, fx.duration_ms, xs, ys, fx.stimulus, s.space, "detected")


def recording_fixations(
    rec: GazeRecording,
    setup: ReadingSetup,
    *,
    geometry: DisplayGeometry,
    screen_px: tuple[int, int],
    image_sizes: dict[int, tuple[int, int]],
    warnings: list[str],
) -> Fixations:
    """Vendor fixations when present (unless the setup asks for re-detection), else I-VT/I-DT
    on the samples, in degrees where the geometry allows.

    Samples in fractions of the image (``media_norm``, ``surface_norm``) are placed on the
    screen first, through the rectangle each stimulus's image had there (``image_sizes``: the
    matched images' sizes by stimulus index), so that thresholds in degrees mean degrees. Without
    degrees, positions are scaled by the export's own pixels per degree (REFLACX) or by
    :data:`~ml.gaze.screen.FALLBACK_PX_PER_DEG` (and ``warnings`` says so).

    Raises:
        GazeFormatError: neither fixations nor enough samples.
    """
    redetect = setup.detection in ("ivt", "idt")
    if rec.fixations is not None and (not redetect or rec.samples is None):
        if redetect:
            warnings.append("re-detection asked for, but the export has no samples: vendor used")
        return rec.fixations
    if rec.samples is None or len(rec.samples) < 2:
        raise GazeFormatError("the export has neither fixations nor enough samples", path=rec.path)
    method = "idt" if setup.detection == "idt" else "ivt"
    cfg = setup.detection_config()
    s = rec.samples
    rate = setup.rate_hz or None
    if s.space in SCREEN_SPACES and geometry.has_angles:
        return detect_fixations(s, method=method, geometry=geometry, config=cfg, rate_hz=rate)
    if s.space in IMAGE_FRACTION_SPACES:
        on_screen = image_fractions_on_screen(
            s, rec.stimuli, placement=setup.placement, screen_px=screen_px,
            image_sizes=image_sizes,
        )  # fmt: skip
        if geometry.has_angles:
            fx = detect_fixations(
                on_screen, method=method, geometry=geometry, config=cfg, rate_hz=rate
            )
            return in_sample_units(fx, s)
        s_px = on_screen
    else:
        s_px = s
    # No degrees from the geometry: scale positions to approximate degrees first.
    extra = s.extra
    if "angular_resolution_x_pixels_per_degree" in extra:  # REFLACX: image px per degree per row
        ppd = (
            extra["angular_resolution_x_pixels_per_degree"],
            extra["angular_resolution_y_pixels_per_degree"],
        )
    else:
        ppd = fallback_px_per_deg(s_px.space, geometry.screen_px)
        warnings.append(
            f"no screen size in mm or viewing distance: detection assumed "
            f"{FALLBACK_PX_PER_DEG:g} px per degree"
        )
    px, py = (np.asarray(v, float) for v in ppd)
    scaled = Samples(
        s.time_ms, s_px.x / px, s_px.y / py, s.valid, s.pupil, s.stimulus, s.line, "deg"
    )
    return in_sample_units(detect_fixations(scaled, method=method, config=cfg, rate_hz=rate), s)


@dataclass
class ImageReading:
    """One image's reading in a recording: its fixations in image pixels, and its quality.

    ``extra`` holds the per-fixation columns asked for (``analyse_recording(extra_columns=)``),
    by their output names.
    """

    key: str
    stimulus_name: str
    start_ms: float | None
    end_ms: float | None
    source: str
    quality: dict
    start: np.ndarray
    duration: np.ndarray
    x: np.ndarray
    y: np.ndarray
    on_image: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Analysis:
    """A recording's readings, with what the caller reports beside them."""

    readings: list[ImageReading] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    quality: dict = field(default_factory=dict)


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def analyse_recording(
    rec: GazeRecording,
    setup: ReadingSetup,
    *,
    images: Mapping[str, tuple[int, int]],
    thresholds: QualityThresholds | None = None,
    image_key: str | None = None,
    extra_columns: Mapping[str, str] | None = None,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Analysis:
    """Detect, map, match and grade a read recording.

    Stimuli are matched to ``images`` by key; the stimuli of one image form one reading, mapped
    through the rectangle of its first stimulus. The export's screen size, where it states one,
    wins over the setup's (with a warning when they differ).

    Every fixation is accounted for in ``quality``: ``fixations_parsed``, ``fixations_kept`` (in
    readings) and ``dropped`` (count, by reason: calibration screen, matched no image, outside
    every stimulus; and each stimulus with the line where it first appears). Where the export
    has its own image positions (EGD-CXR's X_ORIGINAL/Y_ORIGINAL), ``original_xy_*`` give their
    largest and median distance from the mapped positions, and a warning above
    :data:`ORIGINAL_XY_WARN_PX`.

    Args:
        rec: What :func:`ml.gaze.read_recording` read (its stimuli may be set here: see
            ``image_key``).
        setup: The session's display, placement and detection.
        images: The candidate images' ``(width, height)`` by key.
        thresholds: The quality grade's thresholds.
        image_key: The image of an export that names none, or only calibration screens (what
            lies outside every stimulus is a reading of it).
        extra_columns: Per-fixation columns of the export to carry into the readings, as
            ``{output name: export column}``.
        name: The file's name, for messages.
        progress: Called with a percentage (45 to 80) as the work advances.

    Raises:
        GazeFormatError: an export that names no image, or has no usable gaze.
    """
    progress = progress or (lambda p: None)
    extra_columns = extra_columns or {}
    out = Analysis(warnings=list(rec.warnings))
    screen_px = tuple(rec.screen_size_px or setup.screen_px)
    if rec.screen_size_px and tuple(rec.screen_size_px) != tuple(setup.screen_px):
        out.warnings.append(
            f"the export states a {screen_px[0]}x{screen_px[1]} screen; the session says "
            f"{setup.screen_px[0]}x{setup.screen_px[1]}: the export's was used"
        )
    geometry = setup.geometry(screen_px)
    if image_key and all(st.source == "calibration" for st in rec.stimuli):
        # Exports that name no image (a reduced Gazepoint export; a Tobii export whose only
        # stimulus is its calibration screen): what lies outside every stimulus is a reading of
        # the image the uploader named.
        new = len(rec.stimuli)
        rec.stimuli = [
            *rec.stimuli,
            Stimulus(image_key, image_key, math.nan, math.nan, "upload option"),
        ]
        for part in (rec.samples, rec.fixations):
            if part is not None:
                part.stimulus[part.stimulus < 0] = new
    if not [st for st in rec.stimuli if st.source != "calibration"]:
        raise GazeFormatError(
            "the export names no image (no stimulus, trial or media): upload it with the "
            "option image_key naming the image",
            path=name,
        )
    match = match_stimuli(rec.stimuli, list(images), skip_sources=("calibration",))
    sizes = {i: tuple(images[key]) for i, key in match.matched.items()}
    fx = recording_fixations(
        rec, setup, geometry=geometry, screen_px=screen_px, image_sizes=sizes,
        warnings=out.warnings,
    )  # fmt: skip
    progress(45)
    out.unmatched = [printable(n) for n in match.unmatched]
    groups: dict[str, list[int]] = {}
    for i, key in match.matched.items():
        groups.setdefault(key, []).append(i)
    s = rec.samples
    all_on: list[np.ndarray] = []
    original_errors: list[tuple[str, np.ndarray, str]] = []
    alt_errors: list[np.ndarray] = []
    n_groups = max(1, len(groups))
    # Rows per stimulus from one sort: per image work is then O(its rows), not O(all rows).
    fx_rows = RowsByStimulus(fx.stimulus, len(rec.stimuli))
    s_rows = RowsByStimulus(s.stimulus, len(rec.stimuli)) if s is not None else None
    for g, (key, idxs) in enumerate(groups.items()):
        size = tuple(images[key])
        first = rec.stimuli[idxs[0]]
        rect = image_rect(setup.placement, stimulus=first, image_size=size, screen_px=screen_px)
        fsel = fx_rows.rows(idxs)
        pts = to_image(
            fx.x[fsel], fx.y[fsel], space=fx.space, rect=rect, image_size=size,
            screen_px=screen_px,
        )  # fmt: skip
        on_samples = None
        if s is not None:
            ssel = s_rows.rows(idxs)
            sp = to_image(
                s.x[ssel], s.y[ssel], space=s.space, rect=rect, image_size=size,
                screen_px=screen_px,
            )  # fmt: skip
            on_samples = sp.on_image
            all_on.append(sp.on_image[s.valid[ssel]])
        reports = [
            quality_report(
                rec,
                stimulus=i,
                on_image=on_samples if len(idxs) == 1 else None,
                fixations=fx,
                thresholds=thresholds,
                sample_rows=s_rows.rows(i) if s_rows is not None else None,
                fixation_rows=fx_rows.rows(i),
            )
            for i in idxs
        ]
        q = max(reports, key=lambda r: ("good", "usable", "poor").index(r.grade)).as_dict()
        q["fixation_count"] = int(fsel.size)
        durations = fx.duration_ms[fsel]
        q["mean_fixation_ms"] = float(np.mean(durations)) if durations.size else None
        q["image_rect"] = [round(v, 3) for v in (rect.left, rect.top, rect.width, rect.height)]
        original = original_xy_errors(
            rec, fixations=fx, fixation_rows=fsel,
            sample_rows=ssel if s is not None else None, rect=rect, image_size=size,
            screen_px=screen_px,
        )  # fmt: skip
        if original is not None:
            errors, from_what = original
            q.update(original_xy_summary(errors, from_what))
            original_errors.append((key, errors, from_what))
            alt_rect = screen_pad_rect(first, screen_px)
            alt = None
            if alt_rect is not None:
                alt = original_xy_errors(
                    rec, fixations=fx, fixation_rows=fsel,
                    sample_rows=ssel if s is not None else None, rect=alt_rect,
                    image_size=size, screen_px=screen_px,
                )  # fmt: skip
            if alt is not None:
                q.update(original_xy_summary(alt[0], alt[1], SCREEN_PADS))
                alt_errors.append(alt[0])
        starts = [st.start_ms for st in (rec.stimuli[i] for i in idxs)]
        ends = [st.end_ms for st in (rec.stimuli[i] for i in idxs)]
        start = np.nanmin(starts) if np.isfinite(starts).any() else None
        end = np.nanmax(ends) if np.isfinite(ends).any() else None
        if start is None and fsel.size:
            start = float(np.nanmin(fx.start_ms[fsel]))
        if end is None and fsel.size:
            end = float(np.nanmax(fx.end_ms[fsel]))
        out.readings.append(
            ImageReading(
                key=key,
                stimulus_name=printable(first.name)[:500],
                start_ms=_finite(start),
                end_ms=_finite(end),
                source=fx.source,
                quality=q,
                start=fx.start_ms[fsel],
                duration=fx.duration_ms[fsel],
                x=pts.x,
                y=pts.y,
                on_image=pts.on_image,
                extra={
                    out_name: np.asarray(fx.extra[column], float)[fsel]
                    for out_name, column in extra_columns.items()
                    if column in fx.extra
                },
            )
        )
        step = 45 + int(35 * (g + 1) / n_groups)
        if step != 45 + int(35 * g / n_groups):  # one update per percent, not per image
            progress(step)
    stray = int((fx.stimulus < 0).sum())
    if stray:
        out.warnings.append(f"{stray} fixation(s) fall outside every stimulus and were left out")
    dropped = _dropped(rec, fx_rows, match.matched, stray)
    whole = quality_report(
        rec,
        on_image=np.concatenate(all_on) if all_on else None,
        fixations=fx,
        thresholds=thresholds,
    ).as_dict()
    whole["format"] = rec.format
    whole["tracker"] = rec.tracker
    whole["fixation_source"] = fx.source
    whole["stimuli"] = len(rec.stimuli)
    whole["readings"] = len(out.readings)
    whole["fixations_parsed"] = len(fx)
    whole["fixations_kept"] = int(sum(len(r.duration) for r in out.readings))
    whole["dropped"] = dropped
    whole["calibration_screens"] = calibration_screens(rec, geometry, screen_px, s_rows, fx)
    if original_errors:
        whole.update(
            original_xy_summary(
                np.concatenate([e for _, e, _ in original_errors]),
                ", ".join(sorted({w for _, _, w in original_errors})),
            )
        )
        if alt_errors:
            whole.update(original_xy_summary(np.concatenate(alt_errors), "", SCREEN_PADS))
        worst_key, worst, _ = max(original_errors, key=lambda t: float(np.max(t[1])))
        if whole["original_xy_max_error_px"] > ORIGINAL_XY_WARN_PX:
            alt_max = whole.get(f"original_xy_{SCREEN_PADS}_max_error_px")
            other = (
                f"; they agree within {alt_max:g} px with pads in screen pixels (the EGD-CXR "
                "authors' code: the image filling the screen less its pads)"
                if alt_max is not None and alt_max <= ORIGINAL_XY_WARN_PX
                else ""
            )
            out.warnings.append(
                f"X_ORIGINAL/Y_ORIGINAL lie up to {whole['original_xy_max_error_px']:g} image px "
                f"(median {whole['original_xy_median_error_px']:g} px) from the positions "
                f"mapped from the screen (worst: image {worst_key}, "
                f"{float(np.max(worst)):.2f} px): the image padding, the screen size or the "
                f"placement does not match the export's own mapping{other}"
            )
    if whole["calibration_screens"] and whole["validation_error_deg"] is None:
        errs = [c["error_deg"] for c in whole["calibration_screens"] if "error_deg" in c]
        whole["validation_error_deg"] = round(float(np.median(errs)), 3) if errs else None
    out.quality = whole
    return out


def _dropped(
    rec: GazeRecording,
    fx_rows: RowsByStimulus,
    matched: Mapping[int, str],
    stray: int,
) -> dict:
    """The fixations that no reading stores, and why: a calibration screen, a stimulus that
    matched no image, or no stimulus at all; each stimulus named with its first line."""
    by_reason: dict[str, int] = {}
    listed: list[dict] = []
    for i, st in enumerate(rec.stimuli):
        if i in matched:
            continue
        n = int(fx_rows.rows(i).size)
        if not n:
            continue
        reason = "calibration screen" if st.source == "calibration" else "matched no image"
        by_reason[reason] = by_reason.get(reason, 0) + n
        listed.append(
            {"stimulus": printable(st.name), "line": st.line, "fixations": n, "reason": reason}
        )
    if stray:
        by_reason["outside every stimulus"] = stray
    # Lost fixations first: they are what a reader of the report must see.
    listed.sort(key=lambda d: d["reason"] != "matched no image")
    return {
        "count": int(sum(by_reason.values())),
        "by_reason": by_reason,
        "stimuli": listed[:DROPPED_LISTED],
    }
