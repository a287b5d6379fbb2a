"""Data quality of a recording or one reading, and a grade from thresholds the lab sets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from ml.gaze.recording import Fixations, GazeRecording, measured_rate_hz

GRADES = ("good", "usable", "poor")


@dataclass(frozen=True)
class QualityThresholds:
    """Limits for the grade; each measure grades separately and the worst grade wins.

    Defaults are common lab practice: EyeLink calls validation "GOOD" under 0.5 deg average
    error and "FAIR" under 1.0 deg; Holmqvist et al. (2011) treat > 20-30 % data loss as poor.
    """

    good_valid_pct: float = 90.0
    usable_valid_pct: float = 70.0
    good_on_image_pct: float = 80.0
    usable_on_image_pct: float = 50.0
    good_error_deg: float = 0.5
    usable_error_deg: float = 1.0
    rate_tolerance: float = 0.1  # measured rate may differ from the declared one by 10 %
    min_fixations: int = 1


@dataclass
class QualityReport:
    """Quality measures (NaN / None when the data cannot tell) and the grade with its reasons."""

    sampling_rate_declared_hz: float | None
    sampling_rate_measured_hz: float | None
    sample_count: int
    valid_pct: float
    on_image_pct: float
    blink_count: int
    validation_error_deg: float
    validation_max_error_deg: float
    fixation_count: int
    mean_fixation_ms: float
    grade: str
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """A JSON-ready dict (NaN written as None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def _grade(value: float, good: float, usable: float, higher_is_better: bool) -> str:
    if math.isnan(value):
        return "good"
    if higher_is_better:
        return "good" if value >= good else "usable" if value >= usable else "poor"
    return "good" if value <= good else "usable" if value <= usable else "poor"


def _grade_all(
    *,
    valid_pct: float,
    on_image_pct: float,
    error_deg: float,
    declared_hz: float | None,
    measured_hz: float | None,
    fixation_count: int,
    thresholds: QualityThresholds,
) -> tuple[str, list[str]]:
    th = thresholds
    grades: list[tuple[str, str]] = [
        (_grade(valid_pct, th.good_valid_pct, th.usable_valid_pct, True), "valid samples"),
        (
            _grade(on_image_pct, th.good_on_image_pct, th.usable_on_image_pct, True),
            "gaze on the image",
        ),
        (_grade(error_deg, th.good_error_deg, th.usable_error_deg, False), "validation error"),
    ]
    if (
        declared_hz
        and measured_hz
        and abs(measured_hz - declared_hz) / declared_hz > (th.rate_tolerance)
    ):
        grades.append(
            ("usable", f"measured rate {measured_hz:.1f} Hz vs declared {declared_hz:g} Hz")
        )
    if fixation_count < th.min_fixations:
        grades.append(("poor", f"{fixation_count} fixations"))
    worst = max(GRADES.index(g) for g, _ in grades)
    return GRADES[worst], [f"{why}: {g}" for g, why in grades if g != "good"]


# The measures of a stored report (``QualityReport.as_dict()``) that its grade comes from.
GRADED_MEASURES = ("valid_pct", "on_image_pct", "validation_error_deg", "fixation_count")


def grade_measures(
    measures: Mapping[str, object], thresholds: QualityThresholds | None = None
) -> tuple[str, list[str]]:
    """Grade stored quality measures again, with other thresholds, without the recording.

    Args:
        measures: A report as :meth:`QualityReport.as_dict` wrote it (None for a measure the
            data could not tell, as there).
        thresholds: Grade limits (default: :class:`QualityThresholds`).

    Returns:
        ``(grade, reasons)``: what :func:`quality_report` gives for these measures.
    """

    def number(key: str) -> float:
        value = measures.get(key)
        return math.nan if value is None else float(value)

    return _grade_all(
        valid_pct=number("valid_pct"),
        on_image_pct=number("on_image_pct"),
        error_deg=number("validation_error_deg"),
        declared_hz=measures.get("sampling_rate_declared_hz"),
        measured_hz=measures.get("sampling_rate_measured_hz"),
        fixation_count=int(measures.get("fixation_count") or 0),
        thresholds=thresholds or QualityThresholds(),
    )


class RowsByStimulus:
    """The rows of each stimulus index, from one stable sort (instead of a pass per stimulus).

    ``rows(i)`` (or ``rows([i, j])``) are ascending row indices: what ``np.flatnonzero(
    np.isin(stimulus, idxs))`` gives, in O(rows of those stimuli).
    """

    def __init__(self, stimulus: np.ndarray, n_stimuli: int) -> None:
        stimulus = np.asarray(stimulus)
        self.order = np.argsort(stimulus, kind="stable")
        self.bounds = np.searchsorted(stimulus[self.order], np.arange(n_stimuli + 1))

    def rows(self, idxs: int | list[int]) -> np.ndarray:
        if isinstance(idxs, int | np.integer):
            return self.order[self.bounds[idxs] : self.bounds[idxs + 1]]
        parts = [self.order[self.bounds[i] : self.bounds[i + 1]] for i in idxs]
        if len(parts) == 1:
            return parts[0]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.intp)


def quality_report(
    recording: GazeRecording,
    *,
    stimulus: int | None = None,
    on_image: np.ndarray | None = None,
    fixations: Fixations | None = None,
    thresholds: QualityThresholds | None = None,
    sample_rows: np.ndarray | None = None,
    fixation_rows: np.ndarray | None = None,
) -> QualityReport:
    """Measure a recording's (or one reading's) data quality and grade it.

    Args:
        recording: The recording.
        stimulus: A stimulus index to restrict to one reading (None: the whole recording).
        on_image: Per-sample on-image flags (from :func:`ml.gaze.mapping.map_to_image`), for
            the same rows as the selected samples; None: not measured (NaN).
        fixations: The fixations to count (default: the recording's vendor fixations).
        thresholds: Grade limits (default: :class:`QualityThresholds`).
        sample_rows, fixation_rows: With ``stimulus``, the ascending row indices of its samples
            and fixations when the caller has them (see :func:`rows_by_stimulus`): the same
            report without a pass over every row per stimulus.

    Returns:
        A :class:`QualityReport`; its ``reasons`` say which measure set a grade below good.
    """
    th = thresholds or QualityThresholds()
    s = recording.samples
    sel = None
    if s is not None:
        if stimulus is None:
            sel = np.ones(len(s), bool)
        elif sample_rows is not None:
            sel = np.asarray(sample_rows, dtype=np.intp)
        else:
            sel = s.stimulus == stimulus
    n = (len(sel) if sel.dtype != bool else int(sel.sum())) if sel is not None else 0
    valid_pct = float(100.0 * s.valid[sel].mean()) if n else math.nan
    rate = measured_rate_hz(s.time_ms[sel], s.stimulus[sel]) if n > 1 else None
    on_pct = math.nan
    if on_image is not None and len(on_image):
        ok = np.asarray(on_image, bool)
        valid_rows = s.valid[sel] if n and len(ok) == n else np.ones(len(ok), bool)
        on_pct = float(100.0 * ok[valid_rows].mean()) if valid_rows.any() else 0.0
    blinks = 0
    if recording.blinks is not None:
        b = recording.blinks
        if stimulus is None:
            blinks = len(b)
        else:
            st = recording.stimuli[stimulus]
            blinks = int(((b.start_ms >= st.start_ms) & (b.start_ms < st.end_ms)).sum())
    vals = [c for c in recording.calibrations if c.kind == "validation"]
    if not vals:
        vals = [c for c in recording.calibrations if not math.isnan(c.avg_error_deg)]
    err = vals[-1].avg_error_deg if vals else math.nan
    # Binocular EyeLink files validate each eye: take the worse of the last pair.
    if len(vals) > 1 and vals[-1].eye and vals[-2].eye and vals[-1].eye != vals[-2].eye:
        err = max(vals[-1].avg_error_deg, vals[-2].avg_error_deg)
    max_err = max((c.max_error_deg for c in vals[-2:]), default=math.nan)
    fx = fixations if fixations is not None else recording.fixations
    if fx is not None and stimulus is not None:
        keep = fixation_rows if fixation_rows is not None else fx.stimulus == stimulus
        durations = fx.duration_ms[keep]
    else:
        durations = fx.duration_ms if fx is not None else np.zeros(0)
    n_fix = int(len(durations))
    mean_fix = float(np.nanmean(durations)) if n_fix else math.nan

    declared = recording.sampling_rate_declared_hz
    grade, reasons = _grade_all(
        valid_pct=valid_pct, on_image_pct=on_pct, error_deg=err, declared_hz=declared,
        measured_hz=rate, fixation_count=n_fix, thresholds=th,
    )  # fmt: skip
    return QualityReport(
        sampling_rate_declared_hz=declared,
        sampling_rate_measured_hz=rate,
        sample_count=n,
        valid_pct=valid_pct,
        on_image_pct=on_pct,
        blink_count=blinks,
        validation_error_deg=err,
        validation_max_error_deg=max_err,
        fixation_count=n_fix,
        mean_fixation_ms=mean_fix,
        grade=grade,
        reasons=reasons,
    )
