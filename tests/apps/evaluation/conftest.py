"""Evaluation tests: files under a temporary MEDIA_ROOT, VAR_DIR and storage cache; untrained
tiny models (base 4) on 64 x 64 snapshots so that a run takes about a second."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    settings.VAR_DIR = tmp_path / "var"
    return root


@pytest.fixture
def snapshot(personas):
    """A built 64 x 64 snapshot of lab A: 18 images in three classes, two readers."""
    from tests.apps.evaluation.objects import two_reader_snapshot

    return two_reader_snapshot(personas.lab_a, personas.researcher_a)
