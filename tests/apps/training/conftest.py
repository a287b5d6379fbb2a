"""Training tests: files under a temporary MEDIA_ROOT, VAR_DIR and storage cache; tiny models
(base 4-8) on 64 x 64 snapshots so that runs take seconds on 2 CPU cores."""

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
    settings.VAR_DIR = tmp_path / "var"
    return root


@pytest.fixture
def snapshot(personas):
    """A built 64 x 64 snapshot of lab A: 12 images in three classes, two readers."""
    from apps.datasets import services

    lab_with_data(personas.lab_a, personas.researcher_a, per_class=(4, 4, 4))
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="train-me", enqueue=False,
        resolution=[64, 64],
    )  # fmt: skip
    built = services.snapshot_build(snapshot_id=snap.pk)
    assert built.status == "ready", built.error
    return built
