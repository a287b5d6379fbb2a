"""Imaging tests write their files under a temporary MEDIA_ROOT, never into var/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(media: Path) -> list[Path]:
    """Every file under MEDIA_ROOT (temporary files included: none may be left)."""
    return sorted(p for p in media.rglob("*") if p.is_file())


def as_upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)
