"""Recover training jobs that show no sign of life (what the periodic sweeper does)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.training import services


class Command(BaseCommand):
    help = (
        "Queue again the training jobs queued or running with no sign of life (a lost message, "
        "a dead worker), to resume from their last checkpoint; fail those that died "
        "SWEEP_MAX_ATTEMPTS times."
    )

    def handle(self, *args, **options) -> None:
        done = services.training_sweep()
        for kind, ids in done.items():
            self.stdout.write(f"{kind.replace('_', ' ')}: {len(ids)} {ids[:50]}")
