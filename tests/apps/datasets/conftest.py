"""Snapshot tests: files under a temporary MEDIA_ROOT and storage cache; small images and a
small model resolution (64 x 64) so that builds stay fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.datasets.objects import lab_with_data


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    return root


@pytest.fixture
def images(personas):
    return lab_with_data(personas.lab_a, personas.researcher_a)


CHOICES = {"resolution": [64, 64]}
