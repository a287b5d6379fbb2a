"""The one shape of an uploaded file that every app's services take."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass
class Upload:
    """One uploaded file: a readable, seekable binary handle with its name and size.

    ``key`` and ``label`` are what the uploader said about this one file (an image's key and
    class); apps that have no use for them leave them empty.
    """

    file: BinaryIO
    filename: str
    size: int
    key: str | None = None
    label: str = ""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **fields) -> Upload:
        """An upload of a local file (management commands, benchmarks and tests); the caller
        closes ``upload.file``."""
        p = Path(path)
        return cls(file=p.open("rb"), filename=p.name, size=p.stat().st_size, **fields)

    @classmethod
    def from_django(cls, uploaded, **fields) -> Upload:
        """An upload of a Django ``UploadedFile`` (in memory or streamed to a temporary file)."""
        return cls(file=uploaded.file, filename=uploaded.name, size=uploaded.size, **fields)
