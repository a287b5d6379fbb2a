"""Labs with images and readings for the snapshot tests, made directly (no parse): small
images (PNG or DICOM with a PatientID), one session per reader, readings with fixations."""

from __future__ import annotations

import io

import numpy as np

from apps.gaze.models import Reader, Reading, ReadingSession
from apps.imaging.models import Image
from apps.imaging.services import image_ingest
from apps.labs.models import Lab
from tests.apps.gaze.objects import reading_with_fixations
from tests.apps.imaging.dicoms import make_dicom, png_bytes

CLASSES = ("Normal", "CHF", "Pneumonia")


def _pixels(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(20, 230, width)[None, :].repeat(height, 0)
    return np.clip(base + rng.integers(0, 20, size=base.shape), 0, 255).astype(np.uint8)


def add_image(lab: Lab, user, key: str, label: str, *, size=(60, 50), seed=0,
              patient_id: str | None = None) -> Image:  # fmt: skip
    """A PNG image of ``lab`` (or a DICOM with ``patient_id``)."""
    pixels = _pixels(*size, seed=seed + 1000 * lab.pk)
    if patient_id is None:
        data, filename = png_bytes(pixels), f"{key}.png"
    else:
        ds = make_dicom(pixels, phi=True)
        ds.PatientID = patient_id
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        data, filename = out.getvalue(), f"{key}.dcm"
    result = image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=filename, size=len(data),
        key=key, label=label,
    )  # fmt: skip
    assert result.image is not None, result.message
    return result.image


def reader_session(lab: Lab, code: str) -> ReadingSession:
    reader = Reader.objects.get_or_create(lab=lab, code=code)[0]
    return ReadingSession.objects.get_or_create(
        lab=lab, reader=reader, name=f"S-{code}",
        defaults={"screen_width_mm": 531.0, "screen_height_mm": 299.0,
                  "viewing_distance_mm": 650.0, "sampling_rate_hz": 250.0},
    )[0]  # fmt: skip


def add_reading(lab: Lab, image: Image, code: str, points, *, grade="good",
                use_for_training=True) -> Reading:  # fmt: skip
    """A reading of ``image`` by reader ``code`` with fixations ``(x, y, duration_ms)``."""
    return reading_with_fixations(
        lab, reader_session(lab, code), image, points, grade=grade,
        use_for_training=use_for_training, step_ms=300.0,
    )  # fmt: skip


def points_for(image: Image, seed: int, n: int = 4) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    return [
        (float(rng.uniform(0, image.width)), float(rng.uniform(0, image.height)),
         float(rng.uniform(150, 500)))
        for _ in range(n)
    ]  # fmt: skip


def lab_with_data(lab: Lab, user, *, per_class=(4, 4, 4), readers=("R1", "R2"), size=(60, 50),
                  classes=CLASSES) -> list[Image]:  # fmt: skip
    """``per_class[i]`` images of ``classes[i]``, each read by every reader."""
    images = []
    for c, (label, n) in enumerate(zip(classes, per_class, strict=True)):
        for i in range(n):
            key = f"{label.lower()}-{i:02d}"
            image = add_image(lab, user, key, label, size=size, seed=100 * c + i)
            for r, code in enumerate(readers):
                add_reading(lab, image, code, points_for(image, seed=1000 * c + 10 * i + r))
            images.append(image)
    return images


def ready_snapshot(lab: Lab, user, **choices):
    """A built snapshot of a small one-class lab (for the route walk): 4 tiny images, one
    reader, 16 x 16."""
    from apps.datasets import services

    if not Image.objects.filter(lab=lab, key__startswith="snap-").exists():
        for i in range(4):
            image = add_image(lab, user, f"snap-{i}", "CHF", size=(8, 6), seed=500 + i)
            add_reading(lab, image, "R1", [(2.0 + i % 3, 3.0, 300.0), (4.0, 5.0, 200.0)])
    choices = {"labels": ["CHF"], "resolution": [16, 16], **choices}
    snapshot = services.snapshot_create(
        lab=lab, actor=user, name=choices.pop("name", "snap"), enqueue=False, **choices
    )
    built = services.snapshot_build(snapshot_id=snapshot.pk)
    assert built.status == "ready", built.error
    return built
