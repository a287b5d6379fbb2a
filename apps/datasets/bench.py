"""Snapshot build benchmark: images/s and peak memory of ``snapshot_build`` on large images.

    .venv/bin/python -m apps.datasets.bench --images 200 [--small 20] [--height 3000 --width 2500]
        [--size 640x512] [--json report.json]

Runs in a throw-away folder (its own SQLite database, MEDIA_ROOT and storage cache, deleted
afterwards, so nothing touches var/). ``--images`` synthetic 16-bit DICOMs of ``--height`` x
``--width`` are made one at a time and ingested through ``image_ingest`` into a new lab (three
classes in turn); two readers (R1, R2) read every image and two more (S1, S2) only the first
``--small``, each reading with ``--fixations`` fixations. The ingest is timed apart and left out.
Then two snapshots are built at ``--size`` (letterboxed), one after the other in this process:
readers S1 and S2 (``--small`` images), then R1 and R2 (all ``--images``), so the report shows
whether the build's memory grows with the number of images. Each build is timed from
``snapshot_create`` (selection and split) through ``snapshot_build`` (arrays, targets,
manifest), with the process's resident memory sampled every 20 ms. Prints a JSON report.

The helpers here (a throw-away Django, a bench lab, images and readings) also serve
``apps.training.bench``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CLASSES = ("Normal", "CHF", "Pneumonia")


def throwaway_django(prefix: str, **extra_env: str) -> Path:
    """A temporary folder holding the database, media and caches, with Django set up over it
    and migrated; the caller deletes the folder. Call before anything imports settings."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": str(work),
            "MEDIA_ROOT": str(work / "media"),
            "STORAGE_CACHE_DIR": str(work / "cache"),
            "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
            "CELERY_BROKER_URL": "memory://",
            # DEBUG keeps every SQL query in memory: a benchmark would measure that too.
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 50,
            **extra_env,
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return work


def bench_lab(name: str = "Bench lab"):
    """A new lab with the default classes, and its admin (``(lab, user)``)."""
    from apps.imaging.services.labels import image_class_defaults_ensure
    from apps.labs.models import User
    from apps.labs.services import lab_create

    user = User.objects.create_user(f"bench-{time.monotonic_ns()}", password=None)
    lab = lab_create(name=name, creator=user)
    image_class_defaults_ensure(lab=lab)
    return lab, user


def _ingest(lab, user, data: bytes, filename: str, key: str, label: str):
    from apps.imaging.services import image_ingest

    result = image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=filename, size=len(data),
        key=key, label=label,
    )  # fmt: skip
    if result.image is None:
        raise RuntimeError(result.message)
    return result.image


def ingest_dicoms(lab, user, n: int, height: int, width: int, *, seed: int = 0):
    """``n`` synthetic 16-bit DICOMs (``apps.imaging.bench``'s, full of fake PHI) ingested one
    at a time, labelled with the three classes in turn.

    Returns:
        ``(images, ingest_seconds, generation_seconds)``.
    """
    import numpy as np

    from apps.imaging.bench import _dicom

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 20000 + 30000 * np.exp(
        -(((xx - width / 2) / (width / 3)) ** 2) - (((yy - height / 2) / (height / 2.5)) ** 2)
    )
    del yy, xx
    images, ingest_s, generation_s = [], 0.0, 0.0
    folder = Path(tempfile.mkdtemp(prefix="dicoms-"))
    try:
        for i in range(n):
            started = time.perf_counter()
            path = folder / f"img{i:05d}.dcm"
            _dicom(path, i, base, seed=seed)
            data = path.read_bytes()
            path.unlink()
            generation_s += time.perf_counter() - started
            started = time.perf_counter()
            images.append(_ingest(lab, user, data, path.name, path.stem, CLASSES[i % 3]))
            ingest_s += time.perf_counter() - started
            del data
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return images, ingest_s, generation_s


def ingest_pngs(lab, user, n: int, height: int, width: int, *, seed: int = 0) -> list:
    """``n`` small synthetic 8-bit PNGs ingested, labelled with the three classes in turn."""
    import numpy as np
    from PIL import Image as PILImage

    images = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        ramp = np.linspace(20, 230, width)[None, :].repeat(height, 0)
        pixels = np.clip(ramp + rng.integers(0, 25, size=ramp.shape), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        PILImage.fromarray(pixels).save(out, format="PNG")
        images.append(_ingest(lab, user, out.getvalue(), f"img{i:05d}.png", f"img{i:05d}",
                              CLASSES[i % 3]))  # fmt: skip
    return images


def add_readings(lab, user, images: Sequence, readers: Iterable[str], *, fixations: int = 20,
                 seed: int = 0) -> int:  # fmt: skip
    """Each reader reads every image of ``images``: one session per reader (a 531 x 299 mm
    screen at 650 mm, 250 Hz) with one stored recording, and per image a reading of
    ``fixations`` vendor fixations on the image. Returns the number of readings made."""
    import numpy as np

    from apps.gaze import services as gaze
    from apps.gaze.models import Fixation, Reader, Reading, ReadingSession
    from ml.gaze import ImageRect

    made = 0
    for r, code in enumerate(readers):
        reader = Reader.objects.get_or_create(lab=lab, code=code)[0]
        session = ReadingSession.objects.create(
            lab=lab, reader=reader, name=f"S-{code}", screen_width_mm=531.0,
            screen_height_mm=299.0, viewing_distance_mm=650.0, sampling_rate_hz=250.0,
        )  # fmt: skip
        data = b"time,x,y\n0,10,10\n10,11,10\n20,12,11\n"
        [recording] = gaze.recording_upload(
            session=session, uploaded_by=user,
            uploads=[gaze.Upload(file=io.BytesIO(data), filename=f"{code}.csv", size=len(data))],
            options={"time_unit": "ms", "space": "image_px", "image_key": images[0].key},
            enqueue=False,
        )  # fmt: skip
        for i, image in enumerate(images):
            rng = np.random.default_rng(seed + 7919 * r + i)
            rect = ImageRect.fit((1920, 1080), (image.width, image.height))
            reading = Reading.objects.create(
                lab=lab, session=session, recording=recording, image=image,
                stimulus_name=image.key, grade="good", use_for_training=True,
                quality={"image_rect": [rect.left, rect.top, rect.width, rect.height]},
                fixation_count=fixations,
            )  # fmt: skip
            xs = rng.normal(image.width / 2, image.width / 6, fixations).clip(0, image.width - 1)
            ys = rng.normal(image.height / 2, image.height / 6, fixations).clip(0, image.height - 1)
            durations = rng.uniform(150, 500, fixations)
            Fixation.objects.bulk_create(
                Fixation(
                    lab=lab,
                    reading=reading,
                    index=k,
                    start_ms=300.0 * k,
                    duration_ms=float(durations[k]),
                    x=float(xs[k]),
                    y=float(ys[k]),
                    on_image=True,
                    source="vendor",
                )  # fmt: skip
                for k in range(fixations)
            )
            made += 1
    return made


def build_snapshot(lab, user, name: str, **choices: Any):
    """Create and build a snapshot in this process (as its worker would); it must end ready."""
    from apps.datasets import services

    snapshot = services.snapshot_create(lab=lab, actor=user, name=name, enqueue=False, **choices)
    built = services.snapshot_build(snapshot_id=snapshot.pk)
    if built.status != "ready":
        raise RuntimeError(f"snapshot {name!r} is {built.status}: {built.error}")
    return built


def _measured_build(lab, user, name: str, readers: list[str], size: tuple[int, int]) -> dict:
    from apps.imaging.bench import PeakRss, _rss_bytes

    gc.collect()
    before = _rss_bytes()
    with PeakRss() as rss:
        started = time.perf_counter()
        snapshot = build_snapshot(lab, user, name, readers=readers, resolution=list(size))
        seconds = time.perf_counter() - started
    n = snapshot.items.count()
    return {
        "images": n,
        "readers": readers,
        "build_seconds": round(seconds, 2),
        "images_per_second": round(n / seconds, 3) if seconds > 0 else None,
        "rss_before_mib": round(before / 2**20, 1),
        "peak_rss_mib": round(rss.peak / 2**20, 1),
        "peak_increase_mib": round((rss.peak - before) / 2**20, 1),
        "snapshot_mib": round(snapshot.size_bytes / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--small", type=int, default=20, help="images of the first build")
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=2500)
    parser.add_argument("--size", default="640x512", help="model resolution HxW")
    parser.add_argument("--fixations", type=int, default=20, help="per reading")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    small = min(args.small, args.images)
    if small < 12:
        parser.error("--small (and --images) must be at least 12: 4 per class, so that every "
                     "class has a training image")  # fmt: skip

    work = throwaway_django("datasets-bench-")
    try:
        from apps.imaging.bench import _rss_bytes

        lab, user = bench_lab()
        images, ingest_s, generation_s = ingest_dicoms(
            lab, user, args.images, args.height, args.width, seed=args.seed
        )
        started = time.perf_counter()
        readings = add_readings(lab, user, images, ["R1", "R2"], fixations=args.fixations)
        readings += add_readings(lab, user, images[:small], ["S1", "S2"],
                                 fixations=args.fixations, seed=1)  # fmt: skip
        readings_s = time.perf_counter() - started
        del images
        builds = {
            "small": _measured_build(lab, user, "bench-small", ["S1", "S2"], size),
            "large": _measured_build(lab, user, "bench-large", ["R1", "R2"], size),
        }
        report = {
            "images": args.images,
            "shape": [args.height, args.width],
            "size": list(size),
            "fixations_per_reading": args.fixations,
            "ingest_seconds_excluded": round(ingest_s, 2),
            "ingest_images_per_second": round(args.images / ingest_s, 3) if ingest_s else None,
            "generation_seconds_excluded": round(generation_s, 2),
            "readings": readings,
            "readings_seconds_excluded": round(readings_s, 2),
            "builds": builds,
            "peak_growth_mib": round(
                builds["large"]["peak_rss_mib"] - builds["small"]["peak_rss_mib"], 1
            ),
            "rss_end_mib": round(_rss_bytes() / 2**20, 1),
            "cpu_count": os.cpu_count(),
            "processor": _processor(),
        }
        print(json.dumps(report, indent=2))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=1)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _processor() -> str:
    from ml.bench import _processor_name

    return _processor_name()


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
