"""Create (or reset) the demo lab and its demo login for the README's run command."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.labs.models import Lab, Membership, User
from apps.labs.roles import Role
from apps.labs.services import lab_create


class Command(BaseCommand):
    help = "Create the demo lab and a demo user who administers it (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-gaze-2026")
        parser.add_argument("--lab", default="Demo Lab")

    @transaction.atomic
    def handle(self, *args, username: str, password: str, lab: str, **options):
        user, _ = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.org", "first_name": "Demo"}
        )
        user.set_password(password)
        user.is_staff = user.is_superuser = True  # the demo login may open /admin/ too
        user.save()
        demo_lab = Lab.objects.filter(name=lab).first() or lab_create(name=lab, creator=user)
        Membership.objects.update_or_create(user=user, lab=demo_lab, defaults={"role": Role.ADMIN})
        self.stdout.write(f"Demo lab {demo_lab.name!r}; login {username} / {password}")
