"""SR Research EyeLink: ASC text (edf2asc output), the Data Viewer fixation report, and EDF refusal.

ASC facts this reader relies on (EyeLink 1000/Portable Duo manuals, "ASC file format"):

- a sample line starts with its time: ``<t> <x> <y> <pupil>`` per recorded eye (left first),
  then optional velocity/resolution/input columns and a flags field; ``.`` marks a missing value
  and a pupil of ``0.0`` means no pupil;
- times are integer ms on the tracker clock, or ``.5`` steps at 2 kHz / with ``-ftime``;
- ``START``/``END`` bracket a recording block; its ``SAMPLES GAZE|HREF <eyes> RATE <hz>`` line says
  what the sample columns hold (``HREF`` = head-referenced angles, not pixels);
- ``EFIX <eye> <start> <end> <dur> <x> <y> <pupil>``: ``dur`` counts one sample interval more than
  ``end - start`` (it covers the samples), and is kept as the fixation's duration;
- ``MSG <t> [<offset>] <text>``: the event happened at ``t - offset``;
- ``DISPLAY_COORDS <l> <t> <r> <b>`` (maybe written with ``=``) is inclusive: width = r - l + 1.
"""

from __future__ import annotations

import contextlib
import math
import re
from array import array

import numpy as np

from ml.gaze.formats._csv import CsvChunks
from ml.gaze.formats._labels import Labels, stimulus_key
from ml.gaze.formats._numbers import Grow, check_time, floats
from ml.gaze.formats._text import guarded_lines, open_text
from ml.gaze.recording import (
    Blinks,
    Calibration,
    EyeSamples,
    Fixations,
    GazeFormatError,
    GazeRecording,
    Samples,
    Stimulus,
)

_MSG = re.compile(r"MSG\s+(\d+(?:\.\d+)?)\s+(?:(-?\d+)\s+(?=\S))?(.*?)\s*$")
_DISPLAY = re.compile(r"DISPLAY_COORDS\s*=?\s*(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)")
_GAZE_COORDS = re.compile(r"GAZE_COORDS\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)")
_VALIDATION = re.compile(
    r"!CAL\s+VALIDATION\s+(\S+)\s+(\S+)\s+(LEFT|RIGHT)\s+(\w+)\s+ERROR\s+([\d.]+)\s+avg\.\s+"
    r"([\d.]+)\s+max"
)
_CALIBRATION = re.compile(r"!CAL\s+CALIBRATION\s+(\S+)\s+(\S+)\s+(LEFT|RIGHT)\s+(\w+)")
_IMGLOAD = re.compile(
    r"!V\s+IMGLOAD\s+(CENTER|TOP_LEFT|FILL)\s+(\S+)(?:\s+(-?\d+)\s+(-?\d+))?(?:\s+(\d+)\s+(\d+))?"
)
_TRIAL_VAR = re.compile(r"!V\s+TRIAL_VAR\s+(\S+)\s+(.*)")
_EYE = {"L": "left", "R": "right"}


def _num(tok: str) -> float:
    return math.nan if tok == "." else float(tok)


def read_eyelink_asc(
    path: str,
    *,
    eye: str = "average",
    screen_size_px: tuple[int, int] | None = None,
    trial_var: str | None = None,
) -> GazeRecording:
    """Read an EyeLink ASC file (edf2asc output).

    Args:
        path: The .asc file (any extension: the content decides).
        eye: For binocular samples, what ``samples.x/y`` hold: ``"average"`` (mean of the valid
            eyes), ``"left"`` or ``"right"``. Per-eye arrays are always in ``samples.eyes``.
        screen_size_px: The display size, used when the file has no ``DISPLAY_COORDS`` (the
            formats README: ask for it rather than guess) and checked against it otherwise.
        trial_var: A ``!V TRIAL_VAR`` name whose value names the image shown in each trial
            (overrides ``TRIALID``/``IMGLOAD`` names).

    Returns:
        A :class:`GazeRecording` with samples, vendor fixations (``EFIX``; both eyes in
        binocular files, see ``fixations.extra['eye']``), blinks, stimuli (``TRIALID`` /
        ``IMGLOAD`` intervals), validation results and messages. HREF recordings are read with
        ``space == "href"`` and a warning: they cannot be mapped to an image.

    Raises:
        GazeFormatError: on malformed sample/event lines, time running backwards, mixed sample
            modes, or a file with neither samples nor events.
    """
    if eye not in ("average", "left", "right"):
        raise ValueError(f"eye must be 'average', 'left' or 'right', not {eye!r}")
    rec = GazeRecording(format="eyelink_asc", path=path, time_origin="EyeLink tracker clock")
    rec.meta["pupil_unit"] = "EyeLink arbitrary units"
    t_arr, lines = array("d"), array("q")
    cols = {k: array("d") for k in ("xl", "yl", "pl", "xr", "yr", "pr")}
    fix_rows: list[tuple[float, float, float, float, float, str, int]] = []
    blink_rows: list[tuple[float, float, str]] = []
    stimuli: list[Stimulus] = []
    open_stim: Stimulus | None = None
    last_stim: Stimulus | None = None
    block_eyes: tuple[str, ...] | None = None
    space: str | None = None
    rates: list[float] = []
    last_data_t = -math.inf
    last_msg_t = -math.inf
    out_of_order: list[int] = []
    header_lines: list[str] = []
    display: tuple[int, int] | None = None
    n_events = 0

    def close(t: float) -> None:
        nonlocal open_stim
        if open_stim is not None:
            open_stim.end_ms = max(t, open_stim.start_ms)
            open_stim = None

    with open_text(path) as fh:
        for n, line in enumerate(guarded_lines(fh, path), 1):
            c = line[:1]
            if c.isdigit():
                parts = line.split()
                if block_eyes is None:
                    raise GazeFormatError(
                        "a sample line before any START/SAMPLES line: cannot tell which eye "
                        "the columns belong to",
                        path=path,
                        line=n,
                    )
                need = 1 + 3 * len(block_eyes)
                if len(parts) < need:
                    raise GazeFormatError(
                        f"a sample line with {len(parts)} fields; {need} expected for "
                        f"{'+'.join(block_eyes)} samples",
                        path=path,
                        line=n,
                    )
                try:
                    t = float(parts[0])
                    vals = [_num(p) for p in parts[1:need]]
                except ValueError:
                    raise GazeFormatError(
                        f"not a sample line: {line.strip()[:60]!r}", path=path, line=n
                    ) from None
                t_arr.append(t)
                lines.append(n)
                last_data_t = t
                if block_eyes == ("left",):
                    vals += [math.nan] * 3
                elif block_eyes == ("right",):
                    vals = [math.nan] * 3 + vals
                cols["xl"].append(vals[0])
                cols["yl"].append(vals[1])
                cols["pl"].append(vals[2])
                cols["xr"].append(vals[3])
                cols["yr"].append(vals[4])
                cols["pr"].append(vals[5])
                continue
            if c == "*":
                if line.startswith("**"):
                    header_lines.append(line[2:].strip())
                continue
            word = line.split(None, 1)[0] if line.strip() else ""
            if word == "MSG":
                m = _MSG.match(line)
                if not m:
                    continue
                logged = float(m.group(1))
                t = logged - (int(m.group(2)) if m.group(2) else 0)
                text = m.group(3)
                rec.messages.append((t, text))
                # Order by the time each message was logged: an offset legitimately places an
                # event before or after its neighbours (Experiment Builder's "-8 !V IMGLOAD").
                if logged < last_msg_t:
                    out_of_order.append(n)
                last_msg_t = max(last_msg_t, logged)
                # A message written after samples cannot belong before them: edited files
                # (pitfall 3) carry such times; interval bounds use the clamped time.
                t_eff = max(t, last_data_t)
                _message(rec, text, t, n)
                if dm := _DISPLAY.search(text):
                    left, top, right, bottom = (float(g) for g in dm.groups())
                    display = (int(right - left + 1), int(bottom - top + 1))
                elif gm := _GAZE_COORDS.search(text):
                    rec.meta["gaze_coords"] = tuple(float(g) for g in gm.groups())
                elif text.startswith("TRIALID"):
                    close(t_eff)
                    name = text[len("TRIALID") :].strip()
                    open_stim = Stimulus(name, stimulus_key(name), t_eff, math.nan, "TRIALID")
                    stimuli.append(open_stim)
                    last_stim = open_stim
                elif im := _IMGLOAD.search(text):
                    anchor, img, x, y, w, h = im.groups()
                    placement = {
                        "anchor": {"CENTER": "center", "TOP_LEFT": "top_left"}.get(anchor, "fill"),
                        "x": float(x) if x else None,
                        "y": float(y) if y else None,
                        "width": float(w) if w else None,
                        "height": float(h) if h else None,
                    }
                    if open_stim is not None and open_stim.source == "TRIALID":
                        rec.meta.setdefault("trial_ids", []).append(open_stim.name)
                        open_stim.name, open_stim.key = img, stimulus_key(img)
                        open_stim.source, open_stim.placement = "IMGLOAD", placement
                    else:
                        close(t_eff)
                        open_stim = Stimulus(
                            img, stimulus_key(img), t_eff, math.nan, "IMGLOAD", placement
                        )
                        stimuli.append(open_stim)
                        last_stim = open_stim
                elif trial_var and (tv := _TRIAL_VAR.search(text)) and tv.group(1) == trial_var:
                    if last_stim is not None:
                        value = tv.group(2).strip()
                        last_stim.name, last_stim.key = value, stimulus_key(value)
                        last_stim.source = f"TRIAL_VAR {trial_var}"
                elif text.startswith("TRIAL_RESULT"):
                    close(t_eff)
                continue
            if word in ("EFIX", "EBLINK", "ESACC"):
                n_events += 1
                parts = line.split()
                try:
                    if word == "EFIX":
                        ey = _EYE[parts[1]]
                        s, e, d, x, y = (_num(p) for p in parts[2:7])
                        fix_rows.append((s, e, d, x, y, ey, n))
                    elif word == "EBLINK":
                        ey = _EYE[parts[1]]
                        s, _, d = (_num(p) for p in parts[2:5])
                        blink_rows.append((s, d, ey))
                    else:
                        e = _num(parts[3])
                    last_data_t = max(last_data_t, float(parts[3]))
                except (KeyError, IndexError, ValueError):
                    raise GazeFormatError(
                        f"malformed {word} line: {line.strip()[:80]!r}", path=path, line=n
                    ) from None
                continue
            if word == "START":
                toks = line.split()
                eyes = tuple(e for e in ("LEFT", "RIGHT") if e in toks)
                block_eyes = tuple(e.lower() for e in eyes) or block_eyes
            elif word == "SAMPLES":
                toks = line.split()
                eyes = tuple(e.lower() for e in ("LEFT", "RIGHT") if e in toks)
                if eyes:
                    block_eyes = eyes
                mode = "href" if "HREF" in toks[1:3] else "screen_px"
                if "GAZE" not in toks and "HREF" not in toks:
                    raise GazeFormatError(
                        "SAMPLES line names neither GAZE nor HREF (PUPIL-only samples have no "
                        "position)",
                        path=path,
                        line=n,
                    )
                if space is not None and mode != space:
                    raise GazeFormatError(
                        f"recording blocks mix {space} and {mode} samples", path=path, line=n
                    )
                space = mode
                if "RATE" in toks:
                    try:
                        rates.append(float(toks[toks.index("RATE") + 1]))
                    except (IndexError, ValueError):
                        rec.warn(f"line {n}: unreadable RATE in the SAMPLES line")
            elif word == "PUPIL":
                toks = line.split()
                if len(toks) > 1:
                    rec.meta["pupil_unit"] = f"EyeLink {toks[1].lower()} (arbitrary units)"
            elif word == "END":
                toks = line.split()
                if len(toks) > 1:
                    with contextlib.suppress(ValueError):
                        last_data_t = max(last_data_t, float(toks[1]))

    rec.tracker = _tracker(header_lines)
    if not t_arr and not fix_rows:
        raise GazeFormatError(
            "no samples and no fixation events: not a recording (or converted without "
            "samples and events)",
            path=path,
        )
    if out_of_order:
        rec.warn(
            f"{len(out_of_order)} message(s) earlier than a preceding message (hand-edited "
            f"file?), first on line {out_of_order[0]}; stimulus intervals use the file order"
        )
    if rates:
        rec.sampling_rate_declared_hz = rates[0]
        if len(set(rates)) > 1:
            rec.warn(f"recording blocks declare different rates: {sorted(set(rates))} Hz")
    dt_ms = 1000.0 / rates[0] if rates else 1.0
    end_t = max(last_data_t, t_arr[-1] + dt_ms if t_arr else last_data_t)
    if open_stim is not None:
        close(end_t)
    rec.stimuli = stimuli
    _set_screen(rec, display, screen_size_px)
    space = space or "screen_px"
    if space == "href":
        rec.warn(
            "SAMPLES HREF: positions are head-referenced angles, not screen pixels; they "
            "cannot be mapped to an image (re-export the EDF with edf2asc's default GAZE "
            "samples)"
        )

    if t_arr:
        time_ms = np.frombuffer(t_arr, dtype=np.float64).copy()
        line_no = np.frombuffer(lines, dtype=np.int64).copy()
        dup = check_time(time_ms, line_no, None, path)
        if dup:
            rec.warn(f"{dup} sample(s) repeat the previous sample's time")
        a = {k: np.frombuffer(v, dtype=np.float64).copy() for k, v in cols.items()}
        eyes = {}
        for side, k in (("left", "l"), ("right", "r")):
            x, y, p = a["x" + k], a["y" + k], a["p" + k]
            if np.isfinite(x).any() or np.isfinite(p).any():
                p = np.where(p > 0, p, np.nan)
                eyes[side] = EyeSamples(x, y, p, np.isfinite(x) & np.isfinite(y))
        x, y, pupil, valid = _combine(eyes, eye, path)
        stim = _assign(time_ms, stimuli)
        rec.samples = Samples(time_ms, x, y, valid, pupil, stim, line_no, space, eyes)
    if fix_rows:
        s, e, d, x, y, ey, _ = zip(*fix_rows, strict=True)
        start = np.asarray(s, dtype=np.float64)
        which = np.asarray(ey)
        rec.fixations = Fixations(
            start_ms=start,
            duration_ms=np.asarray(d, dtype=np.float64),
            x=np.asarray(x, dtype=np.float64),
            y=np.asarray(y, dtype=np.float64),
            stimulus=_assign(start, stimuli),
            space=space,
            source="vendor",
            eye=str(which[0]) if len(set(ey)) == 1 else "both",
            extra={"eye": which, "end_ms": np.asarray(e, dtype=np.float64)},
        )
    if blink_rows:
        s, d, ey = zip(*blink_rows, strict=True)
        rec.blinks = Blinks(np.asarray(s, float), np.asarray(d, float), np.asarray(ey))
    return rec


def _message(rec: GazeRecording, text: str, t: float, n: int) -> None:
    if "!CAL" not in text:
        return
    if v := _VALIDATION.search(text):
        rec.calibrations.append(
            Calibration(
                kind="validation",
                eye=v.group(3).lower(),
                avg_error_deg=float(v.group(5)),
                max_error_deg=float(v.group(6)),
                result=v.group(4),
                time_ms=t,
            )
        )
    elif c := _CALIBRATION.search(text):
        rec.calibrations.append(
            Calibration("calibration", c.group(3).lower(), math.nan, math.nan, c.group(4), t)
        )


def _tracker(header: list[str]) -> str:
    for h in header:
        if h.upper().startswith("EYELINK"):
            return f"SR Research {h}"
    for h in header:
        if h.startswith("SOURCE:"):
            return f"SR Research {h.split(':', 1)[1].strip()}"
    return "SR Research EyeLink"


def _set_screen(
    rec: GazeRecording, display: tuple[int, int] | None, given: tuple[int, int] | None
) -> None:
    if display is not None:
        rec.screen_size_px = display
        if given is not None and tuple(given) != display:
            rec.warn(
                f"DISPLAY_COORDS says {display[0]}x{display[1]} px but {given[0]}x{given[1]} "
                "was given; the file's value is used"
            )
    elif given is not None:
        rec.screen_size_px = (int(given[0]), int(given[1]))
    else:
        gc = rec.meta.get("gaze_coords")
        hint = f" (GAZE_COORDS says {gc[2]:g} x {gc[3]:g})" if gc else ""
        rec.warn(
            "no DISPLAY_COORDS message: the screen size is unknown" + hint + "; give the "
            "session's screen size rather than guessing it"
        )


def _combine(
    eyes: dict[str, EyeSamples], eye: str, path: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if eye in ("left", "right"):
        if eye not in eyes:
            raise GazeFormatError(f"the {eye} eye was not recorded", path=path)
        e = eyes[eye]
        return e.x, e.y, e.pupil, e.valid
    if len(eyes) == 1:
        e = next(iter(eyes.values()))
        return e.x, e.y, e.pupil, e.valid
    return average_eyes(list(eyes.values()))


def average_eyes(eyes: list[EyeSamples]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean of the eyes valid at each sample (one valid eye: that eye; none: NaN)."""
    xs = np.vstack([np.where(e.valid, e.x, np.nan) for e in eyes])
    ys = np.vstack([np.where(e.valid, e.y, np.nan) for e in eyes])
    ps = np.vstack([e.pupil for e in eyes])
    valid = np.any([e.valid for e in eyes], axis=0)
    with np.errstate(invalid="ignore"), _quiet():
        x = np.nanmean(xs, axis=0)
        y = np.nanmean(ys, axis=0)
        p = np.nanmean(ps, axis=0)
    return x, y, p, valid


class _quiet:
    """Silence numpy's 'mean of empty slice' for all-NaN columns (NaN is the answer there)."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def _assign(time_ms: np.ndarray, stimuli: list[Stimulus]) -> np.ndarray:
    """Index of the stimulus interval containing each time (-1: none; later intervals win)."""
    out = np.full(len(time_ms), -1, dtype=np.int32)
    for i, s in enumerate(stimuli):
        end = s.end_ms if not math.isnan(s.end_ms) else math.inf
        out[(time_ms >= s.start_ms) & (time_ms < end)] = i
    return out


# Binary EDF is refused with the way out: the only EDF reader in Python (eyelinkio) bundles SR
# Research's proprietary EDF library, so the platform asks for ASC, which every lab can produce
# with SR Research's converter.
EDF_REFUSAL = (
    "this is a binary EyeLink EDF file, which the platform does not read: convert it to "
    "ASC with SR Research's edf2asc (e.g. `edf2asc yourfile.edf`, or the EDF Converter "
    "app) and upload the .asc file"
)


def read_eyelink_dataviewer_report(
    path: str,
    *,
    stimulus_column: str | None = None,
    screen_size_px: tuple[int, int] | None = None,
) -> GazeRecording:
    """Read an EyeLink Data Viewer fixation report (one row per fixation).

    Args:
        path: The report (CSV or tab-separated).
        stimulus_column: A report column naming the image of each trial (e.g. an IMAGE trial
            variable); default: ``TRIAL_INDEX`` per ``RECORDING_SESSION_LABEL``.
        screen_size_px: The display size (the report does not state it).

    Returns:
        A recording with vendor fixations in screen px. ``CURRENT_FIX_START`` (ms from the
        trial start) gives onsets when present; otherwise onsets are NaN and a warning says so.

    Raises:
        GazeFormatError: missing ``CURRENT_FIX_X``/``Y``/``DURATION`` columns or bad numbers.
    """
    rec = GazeRecording(
        format="eyelink_dataviewer_report", path=path, tracker="SR Research EyeLink"
    )
    rec.time_origin = "start of each trial (Data Viewer CURRENT_FIX_START)"
    delim = "\t" if "\t" in open_text(path).readline() else ","
    g = {k: Grow() for k in ("start", "dur", "x", "y", "pupil")}
    stim_parts = []
    labels = Labels()
    with CsvChunks(path, delimiter=delim) as r:
        cx, cy = r.find("CURRENT_FIX_X"), r.find("CURRENT_FIX_Y")
        cd = r.find("CURRENT_FIX_DURATION")
        cs = r.find("CURRENT_FIX_START", required=False)
        cp = r.find("CURRENT_FIX_PUPIL", required=False)
        trial = r.find("TRIAL_INDEX", required=False)
        sess = r.find("RECORDING_SESSION_LABEL", required=False)
        name_col = stimulus_column or trial
        if stimulus_column and stimulus_column not in r.index:
            raise GazeFormatError(
                "no such column for the stimulus name", path=path, column=stimulus_column
            )
        ix = r.index
        for columns, ln in r.chunks():

            def col(name: str | None, columns=columns, ln=ln) -> np.ndarray:
                if name is None:
                    return np.full(len(ln), np.nan)
                return floats(columns[ix[name]], path=path, lines=ln, column=name)

            start = col(cs)
            g["start"].add(start)
            g["dur"].add(col(cd))
            g["x"].add(col(cx))
            g["y"].add(col(cy))
            g["pupil"].add(col(cp))
            if name_col:
                names = columns[ix[name_col]]
                session = columns[ix[sess]] if sess else None
                stim_parts.append(
                    labels.runs(names, np.full(len(ln), np.nan), 0.0, name_col, session=session)
                )
    start = g["start"].array()
    dur = g["dur"].array()
    if cs is None:
        rec.warn(
            "no CURRENT_FIX_START column: fixation onsets are unknown (NaN); add it to the "
            "report's columns in Data Viewer"
        )
    if screen_size_px is not None:
        rec.screen_size_px = (int(screen_size_px[0]), int(screen_size_px[1]))
    else:
        rec.warn("a fixation report does not state the screen size; give the session's")
    stim = np.concatenate(stim_parts) if stim_parts else np.full(len(dur), -1, np.int32)
    rec.stimuli = labels.stimuli
    rec.fixations = Fixations(
        start,
        dur,
        g["x"].array(),
        g["y"].array(),
        stim,
        "screen_px",
        "vendor",
        extra={"pupil": g["pupil"].array()},
    )
    bad = np.flatnonzero(~np.isfinite(dur) | (dur < 0))
    if bad.size:
        raise GazeFormatError(
            f"{bad.size} fixation(s) without a valid duration (first: row {bad[0] + 1})",
            path=path,
            column=cd,
        )
    return rec
