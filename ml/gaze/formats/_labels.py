"""Stimulus labels: per-row names of what was on screen, interned into stimulus intervals."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

import numpy as np

from ml.gaze.formats._csv import ByteCells, CodedCells
from ml.gaze.recording import Stimulus

# Names Tobii Pro Lab gives the screens it shows itself (a real export: "Eyetracker Calibration").
CALIBRATION_NAME = re.compile(r"^\s*eye[ -]?tracker[ _-]*(calibration|validation)\s*$", re.I)


def is_calibration_name(name: str) -> bool:
    """Whether a stimulus name is a tracker's own calibration or validation screen."""
    return bool(CALIBRATION_NAME.match(name))


def printable(name: str) -> str:
    """A name with its control characters (a NUL byte, a lone CR...) written as escapes.

    What reports, warnings and stored names show: the character stays visible, and text with a
    NUL cannot reach a database that refuses it (PostgreSQL).
    """
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def stimulus_key(name: str) -> str:
    """Reduce a stimulus name to an image key: drop folders, quotes and the file extension.

    ``"../images/p10_s5.dcm"`` -> ``"p10_s5"``; a plain DICOM_ID stays as it is.
    """
    s = name.strip().strip("\"'")
    s = re.split(r"[\\/]", s)[-1]
    stem, dot, ext = s.rpartition(".")
    if dot and stem and re.fullmatch(r"[A-Za-z][A-Za-z0-9]{1,4}", ext):
        return stem
    return s


class Labels:
    """Interns per-row labels (stimulus names) to small ints, keeping one entry per distinct run.

    Rows name what was on screen (Tobii, Gazepoint, EGD-CXR); consecutive rows with the same
    label form one :class:`Stimulus` interval. The label column's strings are not kept per row.
    """

    def __init__(self) -> None:
        self.stimuli: list[Stimulus] = []
        self._current: tuple[str, ...] | None = None

    def runs(
        self,
        labels: tuple[str, ...] | ByteCells | CodedCells,
        time_ms: np.ndarray,
        dt_ms: float,
        source: str,
        make: Callable[[tuple[str, ...], int], Stimulus | None] | None = None,
        session: tuple[str, ...] | ByteCells | CodedCells | None = None,
        lines: np.ndarray | None = None,
    ) -> np.ndarray:
        """Stimulus indices for one chunk of rows (-1 where the label is blank); ``lines``, the
        rows' line numbers, gives each stimulus the line where it first appears."""
        n = len(labels)
        out = np.empty(n, dtype=np.int32)
        if isinstance(labels, ByteCells | CodedCells) and (
            session is None or type(session) is type(labels)
        ):
            # Vectorised: compare the bytes (or codes); decode only at run starts.
            def cells(c: ByteCells | CodedCells) -> np.ndarray:
                return c.cells if isinstance(c, ByteCells) else c.codes

            diff = cells(labels)[1:] != cells(labels)[:-1]
            if session is not None:
                diff |= cells(session)[1:] != cells(session)[:-1]
            change = [0, *(np.flatnonzero(diff) + 1).tolist(), n]
            keys = None
        else:
            if isinstance(labels, ByteCells | CodedCells):
                labels = labels.strings()
            if isinstance(session, ByteCells | CodedCells):
                session = session.strings()
            keys = labels if session is None else tuple(zip(session, labels, strict=True))
            # Boundaries where the label changes: Python loop only at run starts.
            change = [0] + [i for i in range(1, n) if keys[i] != keys[i - 1]] + [n]
        for a, b in itertools.pairwise(change):
            if keys is not None:
                key = keys[a]
            else:
                key = labels[a] if session is None else (session[a], labels[a])
            label = labels[a].strip()
            if not label:
                self._close(time_ms[a - 1] + dt_ms if a > 0 else math.nan)
                self._current = None
                out[a:b] = -1
                continue
            ident = (key,) if session is None else key
            if self._current != ident:
                self._close(time_ms[a])
                sess = session[a] if session is not None else ""
                stim = Stimulus(
                    name=label,
                    key=stimulus_key(label),
                    start_ms=float(time_ms[a]),
                    end_ms=math.nan,
                    source=source,
                    session=sess,
                )
                if make is not None:
                    stim = make(labels, a) or stim
                    stim.session = sess
                if lines is not None:
                    stim.line = int(lines[a])
                self.stimuli.append(stim)
                self._current = ident
            out[a:b] = len(self.stimuli) - 1
            self.stimuli[-1].end_ms = float(time_ms[b - 1]) + dt_ms
        return out

    def unprintable(self) -> list[Stimulus]:
        """The stimuli whose name holds a control character (a NUL byte in a cell...)."""
        return [s for s in self.stimuli if not s.name.isprintable()]

    def _close(self, t: float) -> None:
        if self._current is not None and self.stimuli and not math.isnan(t):
            self.stimuli[-1].end_ms = max(self.stimuli[-1].end_ms, t)
