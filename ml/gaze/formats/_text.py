"""Opening exports as text: the encoding from the first bytes, lines that cannot be huge, paths.

Every reader opens its file through :func:`open_text` (the right encoding, newlines left to the
csv module) and reads lines through :func:`guarded_lines`, so a 2 GB "line" of junk is refused
rather than loaded.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ml.gaze.recording import GazeFormatError

MAX_LINE_CHARS = 1 << 20  # a line longer than 1 MiB is junk in every format we read
HEAD_BYTES = 65536
EDF_MAGIC = b"SR_RESEARCH"


def sniff_encoding(head: bytes) -> str:
    """The text encoding of a file from its first bytes (BOM first, then UTF-8, else cp1252)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is still UTF-8.
        if exc.start < len(head) - 4:
            return "cp1252"
    return "utf-8"


def read_head(path: str | os.PathLike[str], n_bytes: int = HEAD_BYTES) -> bytes:
    """The first ``n_bytes`` of a file."""
    with open(path, "rb") as fh:
        return fh.read(n_bytes)


def head_text(head: bytes) -> str:
    """Decode a file head for format detection (undecodable bytes replaced)."""
    enc = sniff_encoding(head)
    return head.decode(enc, errors="replace").lstrip("\ufeff")


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text export with the right encoding and universal newlines handled by csv.

    ``newline=""`` lets the csv module see CRLF (Tobii Studio) and quoted line breaks
    (EGD-CXR master_sheet's free text) correctly.
    """
    enc = sniff_encoding(read_head(path))
    return open(path, encoding=enc, errors="replace", newline="")


def guarded_lines(fh: IO[str], path: str, first_line: int = 1) -> Iterator[str]:
    """Yield lines, refusing any longer than :data:`MAX_LINE_CHARS` instead of loading it.

    Reading a 2 GB "line" of junk into memory is what this prevents. ``first_line`` is the
    number of the first line ``fh`` gives (when reading resumes mid-file).
    """
    n = first_line - 1
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE_CHARS:
            raise GazeFormatError(
                f"a line longer than {MAX_LINE_CHARS} characters: not an eye-tracker export",
                path=path,
                line=n,
            )
        yield line


def as_path(path: str | os.PathLike[str] | io.IOBase) -> str:
    """A filesystem path as ``str`` (readers take paths; uploads are saved to disk first)."""
    if isinstance(path, io.IOBase):
        raise TypeError("pass a path; save uploads to a file first")
    return str(Path(path))
