"""Streaming delimited exports in column chunks: the careful csv-module path and the fast paths.

Large exports (EGD-CXR's eye_gaze.csv: 1.5 M rows, ~400 MB) are read chunk by chunk: each chunk's
rows are transposed into columns and converted with C-level ``map(float, ...)``; only numpy arrays
(or ``array.array`` buffers) outlive a chunk, never per-row Python objects.

Readers that ask for it (``CsvChunks.chunks(fast=True)``) get a vectorised path for well-formed
blocks: the file is read in large byte blocks cut at the last newline, numpy finds newlines and
delimiters, and only the columns a reader asks for are cut into fixed-width ``S`` arrays
(:class:`ByteCells`) that numpy converts to float in C. A block that is not plainly well formed
(quotes, NUL bytes, lone CRs, ragged rows, over-long lines, a non-ASCII-compatible encoding) hands
the rest of the file to the careful csv-module reader, so refusals keep their messages and line
numbers.

When the reader names the columns it needs (``chunks(fast=True, numeric=..., text=...)``) and
pyarrow is installed, each checked block is handed to pyarrow's C++ CSV reader instead
(:data:`ARROW_CSV`): numeric columns come back as float64 arrays (pyarrow's parse is correctly
rounded, like ``float``), text columns as :class:`CodedCells` (dictionary codes). Only empty cells
are nulls there; anything pyarrow will not parse (NA markers, decimal commas, ragged rows, ...)
makes that block and the rest of the file take the careful path.

The cells' conversion to numbers is :func:`ml.gaze.formats._numbers.floats`.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from array import array
from collections.abc import Iterable, Iterator

import numpy as np

from ml.gaze.formats._text import MAX_LINE_CHARS, guarded_lines, open_text
from ml.gaze.recording import GazeFormatError

CHUNK_ROWS = 65536
FAST_CSV = True  # False: every reader takes the careful path (tests compare the two)
ARROW_CSV = True  # False: the fast path converts with numpy instead of pyarrow
FAST_BLOCK_BYTES = 16 << 20  # byte blocks of the vectorised path
ARROW_BLOCK_BYTES = 2 << 20  # pyarrow's own blocks within one (parsed on parallel threads)
FAST_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "cp1252"})  # ASCII bytes mean ASCII characters
CSV_FIELD_LIMIT = 131072  # csv.field_size_limit()'s default: longer blocks take the careful path


class ByteCells:
    """One column of a block read by the vectorised path: its cells as a fixed-width ``S`` array.

    Indexing gives a cell as ``str`` (decoded like the text path decodes the file), so code
    written for tuples of strings still reads it; ``_numbers.floats`` and
    ``_labels.Labels.runs`` use the bytes directly.
    """

    __slots__ = ("cells", "encoding")

    def __init__(self, cells: np.ndarray, encoding: str) -> None:
        self.cells = cells
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, i: int) -> str:
        return bytes(self.cells[i]).decode(self.encoding, errors="replace")

    def __iter__(self) -> Iterator[str]:
        return iter(self.strings())

    def strings(self) -> tuple[str, ...]:
        """All cells as strings."""
        return tuple(c.decode(self.encoding, errors="replace") for c in self.cells.tolist())


class ByteColumns:
    """The columns of one byte block, each cut out only when asked for (``columns[i]``)."""

    def __init__(
        self,
        buf: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        delims: np.ndarray,
        width: int,
        encoding: str,
    ) -> None:
        self._buf, self._starts, self._ends, self._delims = buf, starts, ends, delims
        self._width = width
        self._encoding = encoding

    def __len__(self) -> int:
        return self._width

    def __getitem__(self, i: int) -> ByteCells:
        if not -self._width <= i < self._width:
            raise IndexError(i)
        i %= self._width
        a = self._starts if i == 0 else self._delims[:, i - 1] + 1
        b = self._ends if i == self._width - 1 else self._delims[:, i]
        size = int((b - a).max()) if len(a) else 0
        if size == 0:
            return ByteCells(np.zeros(len(a), dtype="S1"), self._encoding)
        idx = a[:, None] + np.arange(size)
        cells = self._buf[np.minimum(idx, len(self._buf) - 1)]
        cells[idx >= b[:, None]] = 0
        return ByteCells(cells.view(f"S{size}").ravel(), self._encoding)


class CodedCells:
    """One text column of a block read by pyarrow: per-row int codes into the block's distinct
    values (decoded like the text path decodes the file). Indexing gives a cell as ``str``."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list[str]) -> None:
        self.codes = codes
        self.values = values

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str:
        return self.values[self.codes[i]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.strings())

    def strings(self) -> tuple[str, ...]:
        """All cells as strings."""
        values = self.values
        return tuple(values[c] for c in self.codes.tolist())


class ArrowColumns:
    """The columns of one block read by pyarrow: ``columns[i]`` is a float64 array for a numeric
    column, a :class:`CodedCells` for a text column; other columns were not read."""

    def __init__(self, width: int, columns: dict[int, np.ndarray | CodedCells]) -> None:
        self._width = width
        self._columns = columns

    def __len__(self) -> int:
        return self._width

    def __getitem__(self, i: int) -> np.ndarray | CodedCells:
        if not -self._width <= i < self._width:
            raise IndexError(i)
        i %= self._width
        try:
            return self._columns[i]
        except KeyError:
            raise KeyError(
                f"column {i} was not asked for in chunks(numeric=..., text=...)"
            ) from None


def _arrow_csv():
    """(pyarrow, pyarrow.csv), or None when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    return pa, pacsv


class CsvChunks:
    """Stream a delimited file as column chunks, with each row's line number kept.

    Rows shorter than the header are padded with blanks (ragged exports such as pymovements'
    missing-values example); longer rows are refused. Blank lines are skipped.

    Args:
        path: The file.
        delimiter: The field separator.
        skip_lines: Lines before the header (already consumed elsewhere).
    """

    def __init__(self, path: str, delimiter: str = ",", skip_lines: int = 0) -> None:
        self.path = str(path)
        self.delimiter = delimiter
        self.skip_lines = skip_lines
        self._fh = open_text(path)
        self.encoding = self._fh.encoding
        lines = guarded_lines(self._fh, self.path)
        for _ in range(skip_lines):
            next(lines, None)
        self._reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(self._reader)
        except StopIteration:
            self._fh.close()
            raise GazeFormatError("the file is empty", path=self.path) from None
        except csv.Error as exc:
            self._fh.close()
            raise GazeFormatError(f"not readable as CSV: {exc}", path=self.path, line=1) from None
        self.header = [h.strip().lstrip("\ufeff") for h in header]
        self.header_line = self._reader.line_num
        self.index = {name: i for i, name in enumerate(self.header)}

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CsvChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def find(self, *prefixes: str, required: bool = True) -> str | None:
        """The first header name equal to, or starting with, one of ``prefixes`` + " [" / " (".

        Units live inside Tobii/Gazepoint column names (``Recording timestamp [ms]``,
        ``TIME(2022/09/19 13:34:49.156)``), so columns are matched on their prefix.
        """
        for p in prefixes:
            if p in self.index:
                return p
        for p in prefixes:
            for name in self.header:
                if name.startswith(p) and name[len(p) : len(p) + 2] in (" [", " (", "(", "["):
                    return name
        if required:
            raise GazeFormatError(
                f"missing column {prefixes[0]!r}; the header has {len(self.header)} columns "
                f"starting {', '.join(self.header[:6])}",
                path=self.path,
                line=self.header_line,
            )
        return None

    def chunks(
        self,
        size: int = CHUNK_ROWS,
        *,
        fast: bool = False,
        numeric: Iterable[str | None] = (),
        text: Iterable[str | None] = (),
    ) -> Iterator[tuple[list[tuple[str, ...]] | ByteColumns | ArrowColumns, array | np.ndarray]]:
        """Yield (columns, line numbers) per chunk; columns[i] is the tuple of column i's cells.

        With ``fast=True``, well-formed blocks come as :class:`ByteColumns` (``columns[i]`` a
        :class:`ByteCells`) with an int64 array of line numbers, and chunks hold a byte block's
        rows rather than ``size``; the first block that is not plainly well formed hands the rest
        of the file to the csv module, which reads (or refuses) it exactly as without ``fast``.
        When ``numeric`` / ``text`` name the columns the caller will read (names absent from the
        header and None are ignored) and pyarrow is installed, well-formed blocks are read by
        pyarrow instead and come as :class:`ArrowColumns`: ``columns[i]`` is a float64 array for a
        numeric column, a :class:`CodedCells` for a text column, and other columns are absent.
        Call it once, before anything else reads the file.
        """
        start = self._fast_start() if fast and FAST_CSV else None
        if start is None:
            yield from self._rows(self._reader, size, 0)
            return
        yield from self._fast(start, size, self._arrow_spec(numeric, text))

    def _arrow_spec(
        self, numeric: Iterable[str | None], text: Iterable[str | None]
    ) -> tuple[list[int], list[int]] | None:
        """(numeric, text) column indices for pyarrow, or None for the numpy fast path."""
        num = sorted({self.index[c] for c in numeric if c is not None and c in self.index})
        txt = sorted({self.index[c] for c in text if c is not None and c in self.index})
        if not ARROW_CSV or not (num or txt) or set(num) & set(txt) or _arrow_csv() is None:
            return None
        return num, txt

    def _rows(
        self, reader: Iterator[list[str]], size: int, offset: int
    ) -> Iterator[tuple[list[tuple[str, ...]], array]]:
        """The careful path: csv-module rows; line numbers are ``offset + reader.line_num``."""
        width = len(self.header)
        while True:
            rows: list[list[str]] = []
            lines = array("q")
            try:
                for row in itertools.islice(reader, size):
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    n = len(row)
                    if n != width:
                        if n < width:
                            row = row + [""] * (width - n)
                        elif not any(c.strip() for c in row[width:]):
                            row = row[:width]
                        else:
                            raise GazeFormatError(
                                f"{n} fields where the header has {width}",
                                path=self.path,
                                line=offset + reader.line_num,
                            )
                    rows.append(row)
                    lines.append(offset + reader.line_num)
            except csv.Error as exc:
                raise GazeFormatError(
                    f"not readable as CSV: {exc}",
                    path=self.path,
                    line=offset + reader.line_num + 1,
                ) from None
            if not rows:
                return
            yield list(zip(*rows, strict=True)), lines

    def _fast_start(self) -> int | None:
        """The byte offset of the first data line, or None when the vectorised path cannot
        read this file the way the csv module does."""
        if (
            self.encoding.lower() not in FAST_ENCODINGS
            or len(self.delimiter) != 1
            or not self.delimiter.isascii()
            or self.delimiter in '"\r\n'
            or len(self.header) < 2
        ):
            return None
        with open(self.path, "rb") as fh:
            head = fh.read(MAX_LINE_CHARS)
        pos = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        for _ in range(self.skip_lines + self.header_line):
            nl = head.find(b"\n", pos)
            if nl < 0:
                return None
            pos = nl + 1
        region = head[:pos]
        if b'"' in region or region.count(b"\r") != region.count(b"\r\n"):
            return None  # quoted or CR-only header lines: leave them to the csv module
        return pos

    def _fast(
        self, offset: int, size: int, arrow: tuple[list[int], list[int]] | None = None
    ) -> Iterator[tuple[list[tuple[str, ...]] | ByteColumns | ArrowColumns, array | np.ndarray]]:
        width = len(self.header)
        delim = ord(self.delimiter)
        line = self.header_line  # csv line_num of the last line consumed
        with open(self.path, "rb") as fh:
            while True:
                fh.seek(offset)
                data = fh.read(FAST_BLOCK_BYTES)
                if not data:
                    return
                at_end = len(data) < FAST_BLOCK_BYTES or not fh.read(1)
                m = len(data) if at_end else data.rfind(b"\n") + 1
                block = self._fast_block(data, m, width, delim, line, arrow) if m else None
                if block is None:
                    break
                columns, lines, n_lines = block
                line += n_lines
                offset += m
                if len(lines):
                    yield columns, lines
                if at_end:
                    return
        # The careful path from here on (same messages, same line numbers).
        enc = "utf-8" if self.encoding.lower() == "utf-8-sig" else self.encoding
        raw = open(self.path, "rb")  # noqa: SIM115 (closed with the wrapper below)
        raw.seek(offset)
        with io.TextIOWrapper(raw, encoding=enc, errors="replace", newline="") as fh:
            lines = guarded_lines(fh, self.path, first_line=self.skip_lines + line + 1)
            yield from self._rows(csv.reader(lines, delimiter=self.delimiter), size, line)

    def _fast_block(
        self,
        data: bytes,
        m: int,
        width: int,
        delim: int,
        line: int,
        arrow: tuple[list[int], list[int]] | None = None,
    ) -> tuple[ByteColumns | ArrowColumns, np.ndarray, int] | None:
        """Rows of ``data[:m]`` (whole lines) when every one is plainly well formed, else None.

        The checks made here (no quotes, no NUL bytes, no over-long line, CRs only before LFs)
        come before pyarrow sees a byte: it never loads a huge line, and line numbers follow.
        """
        if arrow is not None:
            if data.find(b'"', 0, m) >= 0 or data.find(b"\0", 0, m) >= 0:  # quotes, NUL bytes
                return None
            # No CR and no long line: pyarrow, told not to skip blank lines (a blank line is then
            # a row of nulls), reads the lines one for one, so its row count is the line count
            # without counting 1.5 M newlines. A block that may hold a blank line (no numeric
            # column free of nulls) is looked at again below, blank lines found and skipped.
            if self._plain(data, m):
                read = self._arrow_block(data, m, width, *arrow, skip_blank=False)
                if read is not None:
                    n_lines = read[1]
                    return read[0], line + 1 + np.arange(n_lines, dtype=np.int64), n_lines
        buf = np.frombuffer(data, dtype=np.uint8, count=m)
        if (buf == 0x22).any() or (buf == 0).any():  # quotes, NUL bytes
            return None
        nl = np.flatnonzero(buf == 0x0A)
        ends = nl if buf[m - 1] == 0x0A else np.r_[nl, m]
        starts = np.r_[0, ends[:-1] + 1]
        if int((ends - starts).max()) >= min(MAX_LINE_CHARS, CSV_FIELD_LIMIT):
            return None
        n_cr = int(np.count_nonzero(buf == 0x0D))
        if n_cr:
            has_cr = np.zeros(len(ends), dtype=bool)
            nonempty = ends > starts
            has_cr[nonempty] = buf[ends[nonempty] - 1] == 0x0D
            if int(has_cr.sum()) != n_cr:
                return None  # a CR that does not end a line
            ends = ends - has_cr
        n_lines = len(ends)
        keep = ends > starts  # blank lines are skipped, as the csv path skips them
        if arrow is not None:
            lines = line + 1 + np.flatnonzero(keep).astype(np.int64)
            read = self._arrow_block(data, m, width, *arrow)
            if read is None or read[1] != len(lines):
                return None
            return read[0], lines, n_lines
        d = np.flatnonzero(buf == delim)
        count = np.searchsorted(d, ends) - np.searchsorted(d, starts)
        if not (count[keep] == width - 1).all():
            return None  # ragged rows (padded, trimmed or refused by the careful path)
        lines = line + 1 + np.flatnonzero(keep).astype(np.int64)
        columns = ByteColumns(
            buf, starts[keep], ends[keep], d.reshape(-1, width - 1), width, self.encoding
        )
        return columns, lines, n_lines

    @staticmethod
    def _plain(data: bytes, m: int) -> bool:
        """Whether ``data[:m]`` has no CR and no line as long as the line limit (found with
        C-speed byte searches)."""
        if data.find(b"\r", 0, m) >= 0:
            return False
        # A line of ``limit`` or more bytes holds a whole aligned window of ``limit // 2`` bytes
        # without a newline: when every window has one, no line is that long.
        half = min(MAX_LINE_CHARS, CSV_FIELD_LIMIT) // 2
        for a in range(0, m, half):
            if data.find(b"\n", a, min(a + half, m)) < 0 and m - a >= half:
                return False
        # The last line (no final newline) must not be too long either.
        return m - (data.rfind(b"\n", 0, m) + 1) < 2 * half

    def _arrow_block(
        self,
        data: bytes,
        m: int,
        width: int,
        numeric: list[int],
        text: list[int],
        skip_blank: bool = True,
    ) -> tuple[ArrowColumns, int] | None:
        """``data[:m]`` read by pyarrow's CSV reader and its row count, or None when it refuses
        anything (a cell that is not a plain number, a row of another width...). Without
        ``skip_blank`` blank lines are rows, and None is also the answer when one may be there
        (every numeric column has an empty cell)."""
        pa, pacsv = _arrow_csv()
        names = [f"c{i}" for i in range(width)]
        types = {names[i]: pa.float64() for i in numeric}
        types.update({names[i]: pa.dictionary(pa.int32(), pa.binary()) for i in text})
        try:
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(data).slice(0, m)),
                read_options=pacsv.ReadOptions(
                    column_names=names, use_threads=True, block_size=ARROW_BLOCK_BYTES
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter,
                    quote_char=False,
                    double_quote=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=skip_blank,
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[names[i] for i in (*numeric, *text)],
                    column_types=types,
                    null_values=[""],
                    true_values=[],
                    false_values=[],
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    check_utf8=False,
                ),
            )
        except (pa.ArrowException, ValueError):
            return None
        if not skip_blank and not any(table.column(names[i]).null_count == 0 for i in numeric):
            return None  # a blank line would be a row of nulls: cannot tell here
        table = table.unify_dictionaries()
        out: dict[int, np.ndarray | CodedCells] = {}
        for i in numeric:
            values = table.column(names[i]).to_numpy()  # nulls (empty cells) -> NaN
            out[i] = np.ascontiguousarray(values, dtype=np.float64)
        enc = "utf-8" if self.encoding.lower() == "utf-8-sig" else self.encoding
        for i in text:
            chunks = table.column(names[i]).chunks
            if not chunks:
                out[i] = CodedCells(np.zeros(0, dtype=np.int32), [])
                continue
            codes = np.concatenate(
                [c.indices.to_numpy(zero_copy_only=False) for c in chunks]
            ).astype(np.int32, copy=False)
            values = [b.decode(enc, errors="replace") for b in chunks[0].dictionary.to_pylist()]
            out[i] = CodedCells(codes, values)
        return ArrowColumns(width, out), table.num_rows
