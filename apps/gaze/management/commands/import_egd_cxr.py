"""Import EGD-CXR's gaze for a lab whose images are loaded (keys = MIMIC dicom_ids).

    python manage.py import_egd_cxr --root DIR --lab L [--source fixations|eye_gaze] [--queue]

Reads ``fixations.csv`` (default) or ``eye_gaze.csv`` (1.5 M rows, streamed) with
``master_sheet.csv`` from DIR; one reader and one session per SESSION_ID file.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.gaze.management.commands._common import ingest, lab_named, reader_and_session


class Command(BaseCommand):
    help = "Import EGD-CXR fixations.csv or eye_gaze.csv (with master_sheet.csv) into a lab."

    def add_arguments(self, parser):
        parser.add_argument("--root", required=True, help="Folder with the EGD-CXR CSVs.")
        parser.add_argument("--lab", required=True, help="Lab slug or id.")
        parser.add_argument("--source", choices=["fixations", "eye_gaze"], default="fixations")
        parser.add_argument("--reader", default="EGD-CXR", help="Reader code to use.")
        parser.add_argument("--queue", action="store_true", help="Queue the parse for a worker.")

    def handle(self, *args, root, lab, source, reader, queue, **options):
        root_dir = Path(root)
        data = root_dir / f"{source}.csv"
        sheet = root_dir / "master_sheet.csv"
        for p in (data, sheet):
            if not p.is_file():
                raise CommandError(f"{p} is missing")
        session = reader_and_session(
            lab_named(lab), reader, f"EGD-CXR {source}", tracker_make="Gazepoint",
            tracker_model="GP3 HD", sampling_rate_hz=60.0,
        )  # fmt: skip
        for rec in ingest(session, [data, sheet], queue=queue):
            self.stdout.write(
                f"{rec.original_name}: {rec.status}; {rec.readings.count()} readings, "
                f"{len(rec.unmatched_stimuli)} unmatched names"
                + (f"; {rec.errors[0]}" if rec.errors else "")
            )
