"""Delete stored files that no row names (what a crash between a commit and a file delete, or a
request that failed after writing, leaves behind)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.core.management.base import BaseCommand

from apps.core import files, storage


class Command(BaseCommand):
    help = (
        "Delete stored files under the apps' folders that no row names and that are older than "
        "--older-than-hours (uploads in flight are younger). --dry-run lists them only."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than-hours", type=float, default=24.0)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, older_than_hours: float, dry_run: bool, **options) -> None:
        apps = sorted({model._meta.app_label for model in files.registered()})
        found = files.orphans(apps=apps, older_than=timedelta(hours=older_than_hours))
        freed = 0
        for name in found:
            with contextlib.suppress(*storage.STORAGE_ERRORS):
                freed += storage.size(name)
            if not dry_run:
                storage.delete(name)
            self.stdout.write(("would delete " if dry_run else "deleted ") + name)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {len(found)} file(s) no row names under {', '.join(apps)}/ "
            f"({freed / 2**20:.1f} MiB)."
        )
