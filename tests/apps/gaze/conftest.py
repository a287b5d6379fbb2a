"""Gaze tests: small phantom images in lab A, a reader linked to reader_a, simulated readings.

Files go under a temporary MEDIA_ROOT. Phantoms are 250 x 300 px so that everything stays fast.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from apps.gaze import services
from apps.gaze.models import Reader, ReadingSession
from apps.imaging.models import Image
from apps.imaging.services import image_ingest
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.dicom import write_png

H, W = 300, 250
LABELS = ("CHF", "Pneumonia", "Normal")


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture(scope="session")
def phantoms():
    return [make_phantom(label, seed=i + 1, height=H, width=W) for i, label in enumerate(LABELS)]


def image_key(i: int, label: str) -> str:
    return f"{i:08x}-cafe0000-00000000-00000000-{label.lower():0>8}"


def ingest_phantoms(lab, user, phantoms, tmp_path: Path) -> list[Image]:
    """The phantoms as PNG images of ``lab``, keyed like MIMIC dicom_ids."""
    out = []
    for i, p in enumerate(phantoms):
        path = write_png(p, tmp_path / f"ph{lab.pk}-{i}.png")
        data = path.read_bytes()
        result = image_ingest(
            lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=path.name,
            size=len(data), key=image_key(i, p.label),
        )  # fmt: skip
        out.append(result.image)
    return out


@pytest.fixture
def images(personas, phantoms, tmp_path) -> list[Image]:
    return ingest_phantoms(personas.lab_a, personas.researcher_a, phantoms, tmp_path)


def simulated(phantoms, rate: float, n_fix: int = 15, zoom: bool = False, offset=(0.0, 0.0)):
    """One reading per phantom by one simulated radiologist (no calibration offset by default,
    so the truth's image positions are what the tracker reports)."""
    reader = Radiologist(name="R1", n_fixations=n_fix, calibration_offset_deg=offset)
    return [
        simulate_reading(p, reader, rate_hz=rate, seed=i, image_key=image_key(i, p.label),
                         zoom=zoom)
        for i, p in enumerate(phantoms)
    ]  # fmt: skip


@pytest.fixture
def reader(personas) -> Reader:
    return services.reader_create(
        lab=personas.lab_a, code="R1", years_experience=12, specialty="thoracic",
        user=personas.reader_a,
    )  # fmt: skip


@pytest.fixture
def session(personas, reader) -> ReadingSession:
    # The synthetic display: 1920 x 1080 px, 531 x 299 mm, at 650 mm.
    return services.reading_session_create(
        lab=personas.lab_a, reader=reader, created_by=personas.researcher_a, name="S1",
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
