"""Numbers in exports: cells to float64 (C-speed where the column is clean, decimal commas and
NA markers otherwise), columns grown chunk by chunk, whole numeric columns, and the time checks
every reader makes."""

from __future__ import annotations

import math
from array import array

import numpy as np

from ml.gaze.formats._csv import ByteCells, CsvChunks
from ml.gaze.recording import GazeFormatError

NA_STRINGS = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "None", "."})
# Bytes a plain decimal number is made of (NUL pads the fixed-width cells).
_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[list(b"0123456789.+-eE\x00")] = True


def to_float(s: str, *, path: str, line: int, column: str, decimal_comma: bool = True) -> float:
    """Parse one cell as a float: blanks and NA markers give NaN; a decimal comma is accepted.

    Raises:
        GazeFormatError: naming the file, line and column when the cell is not a number.
    """
    s = s.strip()
    if s in NA_STRINGS:
        return math.nan
    try:
        return float(s)
    except ValueError:
        pass
    if decimal_comma and s.count(",") == 1 and "." not in s:
        try:
            return float(s.replace(",", "."))
        except ValueError:
            pass
    raise GazeFormatError(f"{s[:40]!r} is not a number", path=path, line=line, column=column)


def floats(
    values: tuple[str, ...] | list[str] | ByteCells | np.ndarray,
    *,
    path: str,
    lines: array | np.ndarray,
    column: str,
    decimal_comma: bool = True,
) -> np.ndarray:
    """Convert a column chunk to float64: C-speed for clean columns, cell by cell otherwise.

    :class:`ByteCells` made only of digits, signs, points and exponents (or empty: NaN) are
    converted by numpy in C (the same correctly rounded parse as ``float``); any other column
    is decoded and takes the path below, so NA markers, decimal commas and refusals are the same.
    """
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values  # converted by pyarrow already
    if isinstance(values, ByteCells):
        cells = values.cells
        if _NUMBER_BYTES[cells.view(np.uint8)].all():
            empty = cells == b""
            try:
                if not empty.any():
                    return cells.astype(np.float64)
                out = np.full(len(cells), np.nan)
                out[~empty] = cells[~empty].astype(np.float64)
                return out
            except ValueError:
                pass
        values = values.strings()
    n = len(values)
    try:
        return np.fromiter(map(float, values), dtype=np.float64, count=n)
    except ValueError:
        out = np.empty(n, dtype=np.float64)
        for i, s in enumerate(values):
            out[i] = to_float(
                s, path=path, line=lines[i], column=column, decimal_comma=decimal_comma
            )
        return out


class Grow:
    """A float64 column built chunk by chunk (list of arrays, concatenated once)."""

    def __init__(self, dtype: type | np.dtype = np.float64) -> None:
        self.parts: list[np.ndarray] = []
        self.dtype = dtype

    def add(self, arr: np.ndarray) -> None:
        self.parts.append(np.asarray(arr, dtype=self.dtype))

    def array(self) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, dtype=self.dtype)
        return np.concatenate(self.parts)


def check_time(
    time_ms: np.ndarray,
    lines: np.ndarray,
    segment: np.ndarray | None,
    path: str,
    column: str | None = None,
) -> int:
    """Refuse time running backwards within a segment; return how many timestamps repeat.

    Args:
        time_ms: Sample times.
        lines: Their line numbers (to name the first offending line).
        segment: Ids of runs within which time must not decrease (None: the whole file).
        path: The file, for the message.
        column: The time column, for the message.

    Returns:
        The number of samples whose time equals the previous sample's (kept; reported).

    Raises:
        GazeFormatError: at the first sample whose time is earlier than the previous one's.
    """
    if len(time_ms) < 2:
        return 0
    dt = np.diff(time_ms)
    same = np.ones(len(dt), dtype=bool) if segment is None else segment[1:] == segment[:-1]
    bad = np.flatnonzero((dt < 0) & same)
    if bad.size:
        i = int(bad[0]) + 1
        raise GazeFormatError(
            f"time runs backwards: {time_ms[i]:g} ms after {time_ms[i - 1]:g} ms on line "
            f"{int(lines[i - 1])} (edited or concatenated file?)",
            path=path,
            line=int(lines[i]),
            column=column,
        )
    bad_nan = np.flatnonzero(~np.isfinite(time_ms))
    if bad_nan.size:
        raise GazeFormatError(
            "a sample without a time", path=path, line=int(lines[bad_nan[0]]), column=column
        )
    return int(np.count_nonzero((dt == 0) & same))


def read_columns(
    path: str, cols: dict[str, str | None], delimiter: str = ","
) -> tuple[dict[str, np.ndarray], np.ndarray, CsvChunks]:
    """Read the named numeric columns of a CSV fully (None names give NaN).

    Args:
        path: The file.
        cols: Output name -> column name (None: a column of NaN).
        delimiter: The field separator.

    Returns:
        (columns by output name, line numbers, the closed reader with its header).
    """
    g = {k: Grow() for k in cols}
    gl = Grow(np.int64)
    with CsvChunks(path, delimiter=delimiter) as r:
        for c in cols.values():
            if c is not None and c not in r.index:
                r.find(c)
        for columns, ln in r.chunks():
            gl.add(np.frombuffer(ln, dtype=np.int64).copy())
            for k, c in cols.items():
                if c is None:
                    g[k].add(np.full(len(ln), np.nan))
                else:
                    g[k].add(floats(columns[r.index[c]], path=path, lines=ln, column=c))
    return {k: v.array() for k, v in g.items()}, gl.array(), r
