from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from apps.labs.roles import Role


class User(AbstractUser):
    """A person who signs in: a radiologist, a researcher, a lab admin.

    The e-mail address is contact information the user typed and nobody verified: it identifies
    no one (people join labs through invitation links, and sign in with their username), so it
    need not be unique, and refusing a taken address would tell anyone who tried that it exists.
    """


class Lab(models.Model):
    """A research lab: the tenant. Every lab-owned row points to one."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=2000, blank=True)
    quality_thresholds = models.JSONField(
        default=dict, blank=True,
        help_text="The lab's own limits of the gaze quality grade, by name (those of "
        "GAZE_QUALITY_THRESHOLDS); a name absent or null takes the server's default.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lab_id", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "lab"], name="labs_membership_unique_user_lab")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.lab} as {self.role}"


class ApiToken(models.Model):
    """A personal API token. Only the SHA-256 of the secret is stored; the prefix names it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class Invitation(models.Model):
    """An admin's invitation to join a lab, accepted by the invitee through a secret link.

    Addressed to an e-mail address (whoever holds the link may accept it, signing in or creating
    an account) or to a username (only that account may accept it; ``invited_user`` is the
    account that had the username when the invitation was made, None when none had it, and then
    nobody can accept it). Only the SHA-256 of the link's token is stored.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=20, choices=Role.choices)
    email = models.EmailField(blank=True)
    username = models.CharField(max_length=150, blank=True)
    invited_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="invitations_received",
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="invitations_sent",
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations_accepted",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(email="") | ~models.Q(username=""),
                name="labs_invitation_has_invitee",
            )
        ]

    def __str__(self) -> str:
        return f"{self.invitee} to {self.lab} as {self.role}"

    @property
    def invitee(self) -> str:
        """What the admin typed: the e-mail address or the username."""
        return self.email or self.username

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"
