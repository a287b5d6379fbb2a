"""Ingest benchmark: images/s and peak memory of ``image_upload_batch`` on large 16-bit DICOMs.

    .venv/bin/python -m apps.imaging.bench --images 200 [--height 3000 --width 2500]

Runs in a throw-away folder (its own SQLite database and MEDIA_ROOT, deleted afterwards, so
nothing touches var/). The DICOMs (16 bits stored, full of fake PHI) are made one at a time while
the batch consumes them, as one request with ``--images`` files would hand them over, and each
input file is deleted once ingested; generation time is measured and left out of the rate.
Prints a JSON report: images/s, seconds per image, the peak resident memory of the process while
ingesting (sampled every 20 ms), the largest Python/NumPy allocation peak (tracemalloc), and the
bytes stored per image against the de-identified DICOMs' (``stored_to_dicom_ratio``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples the process's resident memory in a thread; ``peak`` is the largest seen."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, _rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _dicom(path: Path, index: int, base, *, seed: int) -> None:
    import numpy as np
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    rng = np.random.default_rng(seed + index)
    pixels = np.clip(base + rng.normal(0, 300, base.shape), 0, 65535).astype("<u2")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ViewPosition = "DX", "PA"
    ds.PatientName, ds.PatientID = f"Bench^Patient{index}", f"MRN{index:08d}"
    ds.PatientBirthDate, ds.StudyDate, ds.StudyTime = "19500101", "20240102", "101010"
    ds.InstitutionName, ds.AccessionNumber = "Bench General Hospital", f"ACC{index:08d}"
    ds.ReferringPhysicianName = "Referrer^Bench"
    ds.add_new(0x00091010, "LO", "BENCH PRIVATE")
    ds.add_new(0x00091011, "LO", f"secret {index}")
    ds.ImagerPixelSpacing = [0.139, 0.139]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.WindowCenter, ds.WindowWidth = 32768, 50000
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="imaging-bench-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": str(work),
            "MEDIA_ROOT": str(work / "media"),
            "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
            "CELERY_BROKER_URL": "memory://",
        }
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import numpy as np

        from apps.imaging.services import Upload, image_upload_batch
        from apps.labs.models import User
        from apps.labs.services import lab_create

        user = User.objects.create_user("bench", password=None)
        lab = lab_create(name="Bench lab", creator=user)
        yy, xx = np.mgrid[0 : args.height, 0 : args.width].astype(np.float32)
        base = 20000 + 30000 * np.exp(
            -(((xx - args.width / 2) / (args.width / 3)) ** 2)
            - (((yy - args.height / 2) / (args.height / 2.5)) ** 2)
        )
        inputs = work / "in"
        inputs.mkdir()
        generation = [0.0]

        def uploads():
            for i in range(args.images):
                started = time.perf_counter()
                path = inputs / f"bench{i:05d}.dcm"
                _dicom(path, i, base, seed=args.seed)
                generation[0] += time.perf_counter() - started
                with open(path, "rb") as fh:
                    yield Upload(file=fh, filename=path.name, size=path.stat().st_size)
                path.unlink()

        import tracemalloc

        tracemalloc.start()
        with PeakRss() as rss:
            started = time.perf_counter()
            results = image_upload_batch(lab=lab, uploaded_by=user, uploads=uploads())
            elapsed = time.perf_counter() - started - generation[0]
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        created = sum(r.status == "created" for r in results)
        media = [p for p in (work / "media").rglob("*") if p.is_file()]
        stored = sum(p.stat().st_size for p in media)
        dicoms = sum(p.stat().st_size for p in media if p.suffix == ".dcm")
        bad = [r.message for r in results if r.status != "created"]
        report = {
            "images": args.images,
            "created": created,
            "not_created": bad[:5],
            "shape": [args.height, args.width],
            "bits_stored": 16,
            "ingest_seconds": round(elapsed, 2),
            "images_per_second": round(created / elapsed, 3) if elapsed > 0 else None,
            "seconds_per_image": round(elapsed / max(created, 1), 3),
            "generation_seconds_excluded": round(generation[0], 2),
            "peak_rss_mib": round(rss.peak / 2**20, 1),
            "peak_traced_alloc_mib": round(traced_peak / 2**20, 1),
            "stored_mib": round(stored / 2**20, 1),
            "stored_per_image_mib": round(stored / max(created, 1) / 2**20, 2),
            "stored_to_dicom_ratio": round(stored / dicoms, 3) if dicoms else None,
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(report, indent=2))
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
