"""Recover recordings whose parse shows no sign of life (what the periodic sweeper does)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.gaze import services


class Command(BaseCommand):
    help = (
        "Queue again the recordings queued or parsing with no sign of life (a lost message, a "
        "dead worker); fail those that died SWEEP_MAX_ATTEMPTS times."
    )

    def handle(self, *args, **options) -> None:
        done = services.recordings_sweep()
        for kind, ids in done.items():
            self.stdout.write(f"{kind.replace('_', ' ')}: {len(ids)} {ids[:50]}")
