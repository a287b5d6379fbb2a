"""Make the API's cached answers stale at once (after a restore, or a write made with ``psql``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.core import respcache


class Command(BaseCommand):
    help = (
        "--clear: make every cached API answer of this database stale and delete them (run it "
        "after restoring the database or writing to it outside the platform)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clear", action="store_true")

    def handle(self, *args, clear: bool, **options) -> None:
        if not respcache.enabled():
            self.stdout.write("The response cache is off (RESPONSE_CACHE_URL is empty).")
            return
        if not clear:
            raise CommandError("Say what to do: --clear.")
        try:
            n = respcache.clear()
        except Exception as exc:
            raise CommandError(f"Redis did not answer: {exc}") from None
        self.stdout.write(f"Cleared: {n} cached answers deleted; every stored answer is stale.")
