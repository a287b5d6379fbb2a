"""Rewrite the float32 arrays stored before the pixels were kept compact.

    python manage.py imaging_compact_arrays [--lab L] [--dry-run]

Images stored earlier kept a float32 ``.npy`` (4 bytes per pixel, twice a 16-bit DICOM). For a
DICOM image whose DICOM gives the same array (within 1/65535), the row is pointed at the DICOM
and the ``.npy`` deleted; any other image gets a 16-bit PNG of its array instead. Each row is
updated and committed before its old file is deleted, and a file another image still names is
kept. Idempotent: a second run finds nothing to do.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.imaging import services
from apps.imaging.models import Image
from apps.labs.models import Lab


class Command(BaseCommand):
    help = "Replace stored float32 .npy arrays with nothing (DICOM) or a 16-bit PNG; report."

    def add_arguments(self, parser):
        parser.add_argument("--lab", help="Only this lab (slug or id).")
        parser.add_argument("--dry-run", action="store_true", help="Report; change nothing.")

    def handle(self, *args, lab=None, dry_run=False, **options):
        images = Image.objects.filter(array_path__iendswith=".npy").order_by("lab_id", "pk")
        if lab:
            found = Lab.objects.filter(slug=lab).first() or (
                Lab.objects.filter(pk=int(lab)).first() if lab.isdigit() else None
            )
            if found is None:
                raise CommandError(f"No lab {lab!r}.")
            images = images.filter(lab=found)
        counts = {"dicom": 0, "png16": 0, "unreadable": 0}
        freed = 0
        for image in images.iterator(chunk_size=200):
            result = services.image_array_compact(image=image, dry_run=dry_run)
            if result is None:
                continue
            counts[result.how] += 1
            freed += result.bytes_freed
            target = {"dicom": "read from its DICOM", "png16": "16-bit PNG"}.get(result.how)
            line = f"image {result.image_id} ({result.key}): "
            line += f"{target}, {result.bytes_freed:,} bytes freed" if target else "left as it is"
            self.stdout.write(f"{line}; {result.message}")
        rewritten = counts["dicom"] + counts["png16"]
        verb = "Would rewrite" if dry_run else "Rewrote"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {rewritten} array(s): {counts['dicom']} now read from their DICOM, "
                f"{counts['png16']} as 16-bit PNGs; {freed:,} bytes "
                f"{'would be ' if dry_run else ''}freed; {counts['unreadable']} unreadable "
                "(left as they are)."
            )
        )
