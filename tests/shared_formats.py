"""The real eye-tracker exports under ``../shared/formats`` (never copied into the repository).

Tests that read them use :func:`needs`: where the folder (or the one file) is absent they skip
on a developer's machine, and fail when ``CI`` is set, so that a CI run can never pass with the
real-export tests silently skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FORMATS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "formats"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(path: Path = FORMATS_DIR) -> str | None:
    """Why a test that reads ``path`` cannot run, or None when it can."""
    return None if path.exists() else f"real exports at {path} are absent"


def needs(path: Path = FORMATS_DIR) -> pytest.MarkDecorator:
    """Mark a test (or, as ``pytestmark``, a module) that reads ``path``."""
    return pytest.mark.shared_formats(path=path)


def require(path: Path = FORMATS_DIR) -> Path:
    """``path``, or skip the running test (fail it under CI) where it is absent."""
    reason = missing(path)
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason}; CI must run the real-export tests", pytrace=False)
        pytest.skip(reason)
    return path
