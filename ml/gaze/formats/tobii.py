"""Tobii Pro Lab and Tobii Studio (legacy) TSV exports.

Both label every sample with the event it belongs to (``Eye movement type`` + index in Pro Lab,
``GazeEventType`` + ``FixationIndex`` in Studio), so vendor fixations are rebuilt by grouping the
rows of each fixation index: onset = its first sample's time, duration = the exported event
duration, position = the exported fixation point.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._labels import Labels, is_calibration_name, printable
from ml.gaze.formats._numbers import Grow, check_time, floats
from ml.gaze.recording import (
    Calibration,
    EyeSamples,
    Fixations,
    GazeFormatError,
    GazeRecording,
    Samples,
    Stimulus,
)

_TIME_UNITS = {"[ms]": 1.0, "[μs]": 1e-3, "[µs]": 1e-3, "[us]": 1e-3, "[s]": 1000.0}


def _unit_scale(name: str, default: float, rec: GazeRecording) -> float:
    for unit, scale in _TIME_UNITS.items():
        if name.endswith(unit):
            return scale
    rec.warn(f"column {name!r} states no unit; taken as milliseconds (older Pro Lab exports)")
    return default


def _fixations_from_labels(
    time_ms: np.ndarray,
    kind: np.ndarray,
    index: np.ndarray,
    duration: np.ndarray,
    fx: np.ndarray,
    fy: np.ndarray,
    stim: np.ndarray,
    space: str,
) -> Fixations:
    """Group labelled fixation samples into one row per fixation index."""
    is_fix = kind & np.isfinite(index)
    if not is_fix.any():
        return Fixations(*(np.zeros(0),) * 4, np.zeros(0, np.int32), space, "vendor")
    rows = np.flatnonzero(is_fix)
    idx = index[rows]
    first = rows[np.r_[True, idx[1:] != idx[:-1]]]
    return Fixations(
        start_ms=time_ms[first],
        duration_ms=duration[first],
        x=fx[first],
        y=fy[first],
        stimulus=stim[first],
        space=space,
        source="vendor",
        eye="both",
        extra={"index": index[first]},
    )


def read_tobii_pro_lab(
    path: str, *, screen_size_px: tuple[int, int] | None = None
) -> GazeRecording:
    """Read a Tobii Pro Lab data export (TSV, one row per sample or event).

    Handles decimal commas (``2,925``), units inside column names (``Recording timestamp [ms]``
    or ``[μs]``; older exports without a unit are taken as ms, with a warning), ``Sensor = Mouse``
    and event-only rows (kept as messages, not samples), ``Invalid`` validity and
    ``EyesNotFound`` labels. Positions are ``Gaze point X/Y [DACS px]`` (screen px); without them,
    ``[MCS norm]`` (media-normalised).

    Args:
        path: The export.
        screen_size_px: Overrides the export's ``Recording resolution`` columns.

    Returns:
        A recording with samples, vendor fixations, stimuli (``Presented Stimulus name`` runs
        with the media's position and size), and average calibration/validation accuracy.

    Raises:
        GazeFormatError: missing time or gaze columns, bad numbers, time running backwards.
    """
    rec = GazeRecording(format="tobii_pro_lab_tsv", path=path, tracker="Tobii")
    rec.time_origin = "recording start (Tobii Pro Lab)"
    rec.meta["pupil_unit"] = "mm"
    g = {k: Grow() for k in ("t", "x", "y", "xl", "yl", "xr", "yr", "pl", "pr", "p", "idx", "dur")}
    g.update({k: Grow() for k in ("fx", "fy")})
    gv = {k: Grow(bool) for k in ("vl", "vr", "fix")}
    gl, gs = Grow(np.int64), Grow(np.int32)
    labels = Labels()
    stim_meta: dict[str, dict] = {}
    with CsvChunks(path, delimiter="\t") as r:
        ix = r.index
        ct = r.find("Recording timestamp")
        scale = _unit_scale(ct, 1.0, rec)
        sensor = r.find("Sensor", required=False)
        cx = r.find("Gaze point X", required=False)
        cy = r.find("Gaze point Y", required=False)
        space = "screen_px"
        if cx is None or "[MCS" in cx or cx.endswith("norm]"):
            cx = next((h for h in r.header if h.startswith("Gaze point X [MCS")), None)
            cy = next((h for h in r.header if h.startswith("Gaze point Y [MCS")), None)
            space = "media_norm"
        if cx is None or cy is None:
            raise GazeFormatError(
                "no 'Gaze point X/Y [DACS px]' (or [MCS norm]) columns: export gaze data",
                path=path,
                line=r.header_line,
            )
        opt = {
            name: r.find(prefix, required=False)
            for name, prefix in (
                ("xl", "Gaze point left X"),
                ("yl", "Gaze point left Y"),
                ("xr", "Gaze point right X"),
                ("yr", "Gaze point right Y"),
                ("pl", "Pupil diameter left"),
                ("pr", "Pupil diameter right"),
                ("p", "Pupil diameter filtered"),
                ("vl", "Validity left"),
                ("vr", "Validity right"),
                ("kind", "Eye movement type"),
                ("idx", "Eye movement type index"),
                ("dur", "Eye movement event duration"),
                ("event", "Event"),
                ("event_value", "Event value"),
                ("stim", "Presented Stimulus name"),
                ("media", "Presented Media name"),
            )
        }
        # The DACS/MCS variants of these start alike; pick the one in the samples' space.
        tag = "[DACS px]" if space == "screen_px" else "[MCS norm]"
        for k in ("xl", "yl", "xr", "yr"):
            if opt[k] is not None:
                want = opt[k].split(" [")[0] + " " + tag
                opt[k] = want if want in ix else None
        fxc = f"Fixation point X {tag}" if f"Fixation point X {tag}" in ix else None
        fyc = f"Fixation point Y {tag}" if f"Fixation point Y {tag}" in ix else None
        mcols = {
            k: r.find(p, required=False)
            for k, p in (
                ("w", "Presented Media width"),
                ("h", "Presented Media height"),
                ("px", "Presented Media position X"),
                ("py", "Presented Media position Y"),
            )
        }
        head = {}
        for columns, ln in r.chunks():
            if not head:
                head = {name: columns[i][0] for name, i in ix.items()}

            def num(name: str | None, columns=columns, ln=ln) -> np.ndarray:
                if name is None:
                    return np.full(len(ln), np.nan)
                return floats(columns[ix[name]], path=path, lines=ln, column=name)

            t_all = num(ct) * scale
            if opt["event"] is not None:
                ev = columns[ix[opt["event"]]]
                val = columns[ix[opt["event_value"]]] if opt["event_value"] else None
                for i in (i for i, e in enumerate(ev) if e):
                    text = ev[i] + (f" {val[i]}" if val and val[i] else "")
                    rec.messages.append((float(t_all[i]), text))
            if sensor is not None:
                keep = np.fromiter((s == "Eye Tracker" for s in columns[ix[sensor]]), bool, len(ln))
            else:
                # Without a Sensor column, rows that only carry an Event are not samples.
                ev = columns[ix[opt["event"]]] if opt["event"] is not None else ("",) * len(ln)
                keep = np.isfinite(num(cx)) | np.fromiter((not e for e in ev), bool, len(ln))
            if not keep.any():
                continue
            sel = np.flatnonzero(keep)
            t = t_all[sel]
            g["t"].add(t)
            gl.add(np.frombuffer(ln, dtype=np.int64)[sel])
            for k, name in (("x", cx), ("y", cy)):
                g[k].add(num(name)[sel])
            for k in ("xl", "yl", "xr", "yr", "pl", "pr", "p"):
                g[k].add(num(opt[k])[sel])
            for k in ("vl", "vr"):
                if opt[k] is None:
                    gv[k].add(np.ones(len(sel), bool))
                else:
                    v = columns[ix[opt[k]]]
                    gv[k].add(np.fromiter((v[i] == "Valid" for i in sel), bool, len(sel)))
            if opt["kind"] is not None:
                kinds = columns[ix[opt["kind"]]]
                gv["fix"].add(np.fromiter((kinds[i] == "Fixation" for i in sel), bool, len(sel)))
                g["idx"].add(num(opt["idx"])[sel])
                g["dur"].add(num(opt["dur"])[sel])
                g["fx"].add(num(fxc)[sel])
                g["fy"].add(num(fyc)[sel])
            name_col = opt["stim"] or opt["media"]
            if name_col is not None:
                names = tuple(columns[ix[name_col]][i] for i in sel)
                media = {k: num(c)[sel] for k, c in mcols.items()}

                def make(names: tuple[str, ...], a: int, media=media) -> Stimulus | None:
                    if not np.isfinite(media["w"][a]):
                        return None
                    stim_meta[names[a]] = {
                        "anchor": "top_left",
                        "x": float(media["px"][a]),
                        "y": float(media["py"][a]),
                        "width": float(media["w"][a]),
                        "height": float(media["h"][a]),
                    }
                    return None

                gs.add(
                    labels.runs(
                        names, t, 0.0, name_col, make=make,
                        lines=np.frombuffer(ln, dtype=np.int64)[sel],
                    )
                )  # fmt: skip
            else:
                gs.add(np.full(len(sel), -1, np.int32))

    time_ms = g["t"].array()
    if time_ms.size == 0:
        raise GazeFormatError(
            "no eye-tracker samples (Sensor = Eye Tracker) in the file", path=path
        )
    lines = gl.array()
    dup = check_time(time_ms, lines, None, path, ct)
    if dup:
        rec.warn(f"{dup} sample(s) repeat the previous sample's time")
    for s in labels.stimuli:
        s.placement = stim_meta.get(s.name)
    rec.stimuli = labels.stimuli
    _mark_calibration(rec, labels)
    eyes = {}
    for side, k in (("left", "l"), ("right", "r")):
        x, y = g["x" + k].array(), g["y" + k].array()
        if x.size and np.isfinite(x).any():
            eyes[side] = EyeSamples(x, y, g["p" + k].array(), gv["v" + k].array() & np.isfinite(x))
    x, y = g["x"].array(), g["y"].array()
    pupil = g["p"].array()
    if not np.isfinite(pupil).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pupil = np.nanmean(np.vstack([g["pl"].array(), g["pr"].array()]), axis=0)
    valid = np.isfinite(x) & np.isfinite(y) & (gv["vl"].array() | gv["vr"].array())
    stim = gs.array()
    rec.samples = Samples(time_ms, x, y, valid, pupil, stim, lines, space, eyes)
    if gv["fix"].parts:
        rec.fixations = _fixations_from_labels(
            time_ms,
            gv["fix"].array(),
            g["idx"].array(),
            g["dur"].array(),
            g["fx"].array(),
            g["fy"].array(),
            stim,
            space,
        )
    _pro_lab_header(rec, head, screen_size_px)
    return rec


def _mark_calibration(rec: GazeRecording, labels: Labels) -> None:
    """The tracker's own calibration/validation screens (Pro Lab names its stimulus
    ``Eyetracker Calibration``) are calibration screens, not images to match; names with a
    control character in them are reported."""
    screens = []
    for s in rec.stimuli:
        if is_calibration_name(s.name):
            s.source = "calibration"
            screens.append(s.name)
    if screens:
        rec.meta["calibration_screens"] = sorted(set(screens))
        # Its dots move over the screen, where the export does not say: not measurable here.
        rec.meta["calibration_target"] = "dots not in the export"
    for s in labels.unprintable():
        rec.warn(
            f"line {s.line}: the stimulus name '{printable(s.name)}' holds a control character: "
            "kept as a stimulus of its own, which matches no image"
        )


def _pro_lab_header(
    rec: GazeRecording, head: dict[str, str], given: tuple[int, int] | None
) -> None:
    def val(name: str) -> float:
        v = head.get(name, "").strip().replace(",", ".")
        try:
            return float(v)
        except ValueError:
            return math.nan

    w, h = val("Recording resolution width [px]"), val("Recording resolution height [px]")
    if given is not None:
        rec.screen_size_px = (int(given[0]), int(given[1]))
    elif math.isfinite(w) and math.isfinite(h):
        rec.screen_size_px = (int(w), int(h))
    for kind in ("calibration", "validation"):
        acc = val(f"Average {kind} accuracy [°]")
        if math.isfinite(acc):
            rec.calibrations.append(
                Calibration(
                    kind, "", acc, math.nan, avg_error_px=val(f"Average {kind} accuracy [px]")
                )
            )
    for k in ("Recording software version", "Recording Fixation filter name", "Participant name"):
        if head.get(k):
            rec.meta[k] = head[k]


_STUDIO_VALID_MAX = 1  # Tobii Studio validity codes: 0 certain ... 4 eye lost; <= 1 is usable


def read_tobii_studio(path: str, *, screen_size_px: tuple[int, int] | None = None) -> GazeRecording:
    """Read a Tobii Studio (legacy) TSV export (BOM and CRLF line endings handled).

    Args:
        path: The export.
        screen_size_px: Overrides the ``RecordingResolution`` column (``1920 x 1080``).

    Returns:
        A recording with samples (``GazePointX/Y (ADCSpx)``, validity codes 0-4 with <= 1 valid,
        pupil ``-1`` as missing), vendor fixations (``FixationIndex`` groups; position from
        ``FixationPointX/Y (MCSpx)`` in media px when exported, else the mean of the group's
        samples in screen px) and stimuli (``MediaName`` runs).

    Raises:
        GazeFormatError: missing columns, bad numbers, time running backwards.
    """
    rec = GazeRecording(format="tobii_studio_tsv", path=path, tracker="Tobii")
    rec.time_origin = "recording start (Tobii Studio RecordingTimestamp)"
    rec.meta["pupil_unit"] = "mm"
    g = {k: Grow() for k in ("t", "x", "y", "xl", "yl", "xr", "yr", "pl", "pr", "vl", "vr")}
    g.update({k: Grow() for k in ("fi", "dur", "fx", "fy")})
    gfix, gl, gs = Grow(bool), Grow(np.int64), Grow(np.int32)
    labels = Labels()
    head: dict[str, str] = {}
    with CsvChunks(path, delimiter="\t") as r:
        ix = r.index
        ct = r.find("RecordingTimestamp")
        cx, cy = r.find("GazePointX (ADCSpx)"), r.find("GazePointY (ADCSpx)")
        opt = {
            k: (c if c in ix else None)
            for k, c in (
                ("xl", "GazePointLeftX (ADCSpx)"),
                ("yl", "GazePointLeftY (ADCSpx)"),
                ("xr", "GazePointRightX (ADCSpx)"),
                ("yr", "GazePointRightY (ADCSpx)"),
                ("pl", "PupilLeft"),
                ("pr", "PupilRight"),
                ("vl", "ValidityLeft"),
                ("vr", "ValidityRight"),
                ("fi", "FixationIndex"),
                ("dur", "GazeEventDuration"),
                ("kind", "GazeEventType"),
                ("fx", "FixationPointX (MCSpx)"),
                ("fy", "FixationPointY (MCSpx)"),
                ("gpi", "GazePointIndex"),
                ("event", "StudioEvent"),
                ("event_data", "StudioEventData"),
                ("media", "MediaName"),
            )
        }
        for columns, ln in r.chunks():
            if not head:
                head = {name: columns[i][0] for name, i in ix.items()}

            def num(name: str | None, columns=columns, ln=ln) -> np.ndarray:
                if name is None:
                    return np.full(len(ln), np.nan)
                return floats(columns[ix[name]], path=path, lines=ln, column=name)

            t_all = num(ct)
            if opt["event"]:
                ev = columns[ix[opt["event"]]]
                data = columns[ix[opt["event_data"]]] if opt["event_data"] else None
                for i in (i for i, e in enumerate(ev) if e):
                    rec.messages.append((float(t_all[i]), ev[i] + (f" {data[i]}" if data else "")))
            # Event-only rows carry no gaze point index: they are not samples.
            keep = np.isfinite(num(opt["gpi"])) if opt["gpi"] else np.ones(len(ln), bool)
            sel = np.flatnonzero(keep)
            if not sel.size:
                continue
            g["t"].add(t_all[sel])
            gl.add(np.frombuffer(ln, dtype=np.int64)[sel])
            g["x"].add(num(cx)[sel])
            g["y"].add(num(cy)[sel])
            for k in ("xl", "yl", "xr", "yr", "pl", "pr", "vl", "vr", "fi", "dur", "fx", "fy"):
                g[k].add(num(opt[k])[sel])
            if opt["kind"]:
                kinds = columns[ix[opt["kind"]]]
                gfix.add(np.fromiter((kinds[i] == "Fixation" for i in sel), bool, len(sel)))
            else:
                gfix.add(np.zeros(len(sel), bool))
            if opt["media"]:
                names = tuple(columns[ix[opt["media"]]][i] for i in sel)
                gs.add(
                    labels.runs(
                        names, t_all[sel], 0.0, "MediaName",
                        lines=np.frombuffer(ln, dtype=np.int64)[sel],
                    )
                )  # fmt: skip
            else:
                gs.add(np.full(len(sel), -1, np.int32))
    time_ms = g["t"].array()
    if not time_ms.size:
        raise GazeFormatError("no gaze samples in the file", path=path)
    lines = gl.array()
    dup = check_time(time_ms, lines, None, path, ct)
    if dup:
        rec.warn(f"{dup} sample(s) repeat the previous sample's time")
    vl, vr = g["vl"].array(), g["vr"].array()
    ok_l = np.nan_to_num(vl, nan=4) <= _STUDIO_VALID_MAX
    ok_r = np.nan_to_num(vr, nan=4) <= _STUDIO_VALID_MAX
    eyes = {}
    for side, k, ok in (("left", "l", ok_l), ("right", "r", ok_r)):
        x, y, p = g["x" + k].array(), g["y" + k].array(), g["p" + k].array()
        p = np.where(p > 0, p, np.nan)  # Studio writes -1.00 for no pupil
        eyes[side] = EyeSamples(x, y, p, ok & np.isfinite(x) & np.isfinite(y))
    x, y = g["x"].array(), g["y"].array()
    valid = np.isfinite(x) & np.isfinite(y) & (ok_l | ok_r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN is the answer
        pupil = np.nanmean(np.vstack([eyes["left"].pupil, eyes["right"].pupil]), axis=0)
    stim = gs.array()
    rec.samples = Samples(time_ms, x, y, valid, pupil, stim, lines, "screen_px", eyes)
    for s in labels.stimuli:
        s.placement = None
    rec.stimuli = labels.stimuli
    _mark_calibration(rec, labels)
    fx, fy = g["fx"].array(), g["fy"].array()
    fi = g["fi"].array()
    fix = _fixations_from_labels(
        time_ms, gfix.array(), fi, g["dur"].array(), fx, fy, stim, "media_px"
    )
    if len(fix) and not np.isfinite(fix.x).all():
        # No media (or no MCS export): the fixation point is the mean of its samples on screen.
        fix.space = "screen_px"
        order = fix.extra["index"]
        for j, idx in enumerate(order):
            m = (fi == idx) & valid
            fix.x[j] = x[m].mean() if m.any() else np.nan
            fix.y[j] = y[m].mean() if m.any() else np.nan
    rec.fixations = fix
    res = head.get("RecordingResolution", "")
    if screen_size_px is not None:
        rec.screen_size_px = (int(screen_size_px[0]), int(screen_size_px[1]))
    elif "x" in res:
        try:
            w, h = (int(v) for v in res.lower().split("x"))
            rec.screen_size_px = (w, h)
        except ValueError:
            rec.warn(f"unreadable RecordingResolution {res!r}")
    for k in ("StudioVersionRec", "FixationFilter", "ParticipantName"):
        if head.get(k):
            rec.meta[k] = head[k]
    return rec
