"""Start the demo's whole loop (``scripts/demo``, before its worker starts): the demo lab's
snapshot, a ``quick`` training job whose version becomes ``production``, and its evaluation.
A restart finds the model and trains nothing."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.evaluation.services.demo import OVERRIDES, demo_loop_start
from apps.labs.models import Lab, User


class Command(BaseCommand):
    help = (
        "Build the demo lab's snapshot and queue its training job and evaluation, unless its "
        "model exists (idempotent). Run where no worker is alive: it queues again, at once, "
        "what a stopped worker left."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lab", default="Demo Lab", help="The lab's name.")
        parser.add_argument("--user", default="demo", help="Who starts the job.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="For the links.")
        parser.add_argument("--epochs", type=int, default=OVERRIDES["epochs"])
        parser.add_argument(
            "--no-recover", action="store_true",
            help="Leave a running worker's work alone (do not queue it again).",
        )  # fmt: skip

    def handle(self, *args, lab: str, user: str, url: str, epochs: int, no_recover: bool,
               **options):  # fmt: skip
        the_lab = Lab.objects.filter(name=lab).first()
        if the_lab is None:
            raise CommandError(f"No lab named {lab!r}: run make_demo_lab first.")
        actor = User.objects.filter(username=user).first()
        if actor is None:
            raise CommandError(f"No user {user!r}.")
        try:
            loop = demo_loop_start(lab=the_lab, actor=actor, overrides={"epochs": epochs},
                                   recover=not no_recover)  # fmt: skip
        except ValidationError as exc:
            raise CommandError(f"The demo's loop cannot start: {exc.messages}") from exc
        url = url.rstrip("/")
        for kind, ids in loop.recovered.items():
            self.stdout.write(f"Queued again what the last worker left: {kind} {ids}")
        snap = loop.snapshot
        splits = ", ".join(f"{sum(by.values())} {split}" for split, by in snap.counts.items())
        size = " x ".join(map(str, snap.choices.get("resolution", [])))
        self.stdout.write(f"Demo snapshot: {splits} images at {size} ({url}/datasets/{snap.pk}/)")
        if loop.state == "trained":
            evaluation = loop.evaluation
            self.stdout.write(
                f"Demo model: version {loop.version.pk} ({loop.version.name}), trained before; "
                f"not training again. Its evaluation ({evaluation.status}): "
                f"{url}/evaluations/{evaluation.pk}/"
            )
            return
        verb = "queued" if loop.state == "queued" else "already queued"
        self.stdout.write(
            f"Demo model: training job {loop.job.pk} {verb} (quick preset, {epochs} epochs at "
            f"most; a minute or two on 2 CPU cores). Follow it at {url}/training/{loop.job.pk}/ "
            f"or on the home page {url}/. Its version becomes 'production' and is evaluated on "
            "the test split; the home page then shows it beside the centre bias and the "
            "inter-observer ceiling."
        )
