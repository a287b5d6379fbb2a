"""Import REFLACX readings for a lab whose images are loaded (keys = MIMIC dicom_ids).

    python manage.py import_reflacx --root DIR --lab L [--source fixations|gaze] [--queue]

DIR is the dataset's folder: ``main_data/metadata_phase_<n>.csv`` and
``main_data/<id>/fixations.csv`` (or ``gaze_data/<id>/gaze.csv``). One session per reader and
phase (the id's prefix, e.g. ``P301``); each reading's file is streamed, never read whole.
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.gaze.management.commands._common import ingest, lab_named, reader_and_session


class Command(BaseCommand):
    help = "Import REFLACX readings (fixations.csv or gaze.csv with the metadata) into a lab."

    def add_arguments(self, parser):
        parser.add_argument("--root", required=True, help="The REFLACX folder.")
        parser.add_argument("--lab", required=True, help="Lab slug or id.")
        parser.add_argument("--source", choices=["fixations", "gaze"], default="fixations")
        parser.add_argument("--queue", action="store_true", help="Queue the parse for a worker.")

    def handle(self, *args, root, lab, source, queue, **options):
        root_dir = Path(root)
        metas = sorted((root_dir / "main_data").glob("metadata_phase_*.csv"))
        if not metas:
            raise CommandError(f"no main_data/metadata_phase_*.csv under {root_dir}")
        the_lab = lab_named(lab)
        folder = "main_data" if source == "fixations" else "gaze_data"
        counts = {"done": 0, "failed": 0, "missing": 0}
        for meta in metas:
            with meta.open(newline="", encoding="utf-8") as fh:
                ids = [row["id"] for row in csv.DictReader(fh)]
            for rid in ids:
                path = root_dir / folder / rid / f"{source}.csv"
                if not path.is_file():
                    counts["missing"] += 1
                    continue
                session = reader_and_session(
                    the_lab, f"REFLACX-{rid.split('R')[0]}", f"REFLACX {rid.split('R')[0]}",
                    tracker_make="SR Research", tracker_model="EyeLink 1000",
                    sampling_rate_hz=1000.0,
                )  # fmt: skip
                for rec in ingest(session, [path, meta], {"reading_id": rid}, queue=queue):
                    counts[rec.status] = counts.get(rec.status, 0) + 1
                    if rec.errors:
                        self.stderr.write(f"{rid}: {rec.errors[0]}")
        self.stdout.write(", ".join(f"{v} {k}" for k, v in counts.items()))
