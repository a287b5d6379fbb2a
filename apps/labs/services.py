"""Writes to labs, memberships and API tokens: each change has exactly one function."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.labs.models import ApiToken, Lab, Membership, User
from apps.labs.roles import Action, Role, role_allows
from apps.labs.selectors import membership_role

TOKEN_PREFIX = "cxr_"


def require_action(*, user: User, lab: Lab, action: Action) -> None:
    """Raise ``PermissionDenied`` unless ``user``'s role in ``lab`` allows ``action``."""
    if not role_allows(membership_role(user=user, lab=lab), action):
        raise PermissionDenied(f"Your role in {lab.name} does not allow this ({action}).")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "lab"
    slug, n = base, 1
    while Lab.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def lab_create(*, name: str, creator: User, description: str = "", slug: str = "") -> Lab:
    """Create a lab with ``creator`` as its first admin."""
    if slug and Lab.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A lab with the slug {slug!r} exists already."})
    lab = Lab.objects.create(name=name, description=description, slug=slug or _unique_slug(name))
    Membership.objects.create(user=creator, lab=lab, role=Role.ADMIN)
    return lab


def lab_update(*, lab: Lab, actor: User, **fields: str) -> Lab:
    """Change a lab's name, slug or description (lab admins)."""
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    slug = fields.get("slug")
    if slug and Lab.objects.filter(slug=slug).exclude(pk=lab.pk).exists():
        raise ValidationError({"slug": f"A lab with the slug {slug!r} exists already."})
    for name, value in fields.items():
        setattr(lab, name, value)
    lab.save(update_fields=list(fields))
    return lab


def lab_delete(*, lab: Lab, actor: User) -> None:
    """Delete a lab and everything it owns (lab admins)."""
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    lab.delete()


def _admin_count(lab: Lab) -> int:
    return Membership.objects.filter(lab=lab, role=Role.ADMIN).count()


@transaction.atomic
def membership_add(*, lab: Lab, actor: User, user: User, role: str) -> Membership:
    """Add ``user`` to ``lab`` with ``role`` (lab admins)."""
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    if Membership.objects.filter(lab=lab, user=user).exists():
        raise ValidationError({"user": f"{user.username} is already a member of {lab.name}."})
    return Membership.objects.create(lab=lab, user=user, role=Role(role))


@transaction.atomic
def membership_change_role(*, membership: Membership, actor: User, role: str) -> Membership:
    """Give a member another role (lab admins); a lab always keeps one admin."""
    require_action(user=actor, lab=membership.lab, action=Action.MANAGE_MEMBERS)
    # Lock the lab's admin rows so two concurrent demotions cannot both pass the check.
    list(Membership.objects.select_for_update().filter(lab=membership.lab, role=Role.ADMIN))
    if membership.role == Role.ADMIN and role != Role.ADMIN and _admin_count(membership.lab) == 1:
        raise ValidationError({"role": "A lab needs at least one admin; appoint another first."})
    membership.role = Role(role)
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> None:
    """Remove a member (lab admins; any member may leave); a lab always keeps one admin."""
    if actor.pk != membership.user_id:
        require_action(user=actor, lab=membership.lab, action=Action.MANAGE_MEMBERS)
    list(Membership.objects.select_for_update().filter(lab=membership.lab, role=Role.ADMIN))
    if membership.role == Role.ADMIN and _admin_count(membership.lab) == 1:
        raise ValidationError({"user": "A lab needs at least one admin; appoint another first."})
    membership.delete()


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(
    *, user: User, name: str, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a personal API token; returns it and its secret, which is shown only this once.

    ``expires_in_days=None`` takes the configured default; 0 makes a token that never expires.
    """
    days = settings.API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[: len(TOKEN_PREFIX) + 8],
        key_hash=_hash_key(key),
        expires_at=timezone.now() + timedelta(days=days) if days else None,
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token; it stays listed as revoked."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


class TokenInvalid(Exception):
    """The presented token is unknown, revoked or expired (the message says which)."""


def api_token_authenticate(*, key: str) -> ApiToken:
    """Find the active token for ``key`` and note its use; raise ``TokenInvalid`` otherwise."""
    token = (
        ApiToken.objects.select_related("user").filter(key_hash=_hash_key(key)).first()
        if key.startswith(TOKEN_PREFIX)
        else None
    )
    if token is None:
        raise TokenInvalid("Invalid API token.")
    if token.revoked_at is not None:
        raise TokenInvalid("This API token has been revoked.")
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenInvalid("This API token has expired.")
    if not token.user.is_active:
        raise TokenInvalid("The account of this API token is disabled.")
    # Write at most once a minute per token: every API call would otherwise be a write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_token_purge(*, older_than_days: int = 30) -> int:
    """Delete tokens revoked or expired more than ``older_than_days`` ago; returns how many."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = (
        ApiToken.objects.filter(revoked_at__lt=cutoff)
        | ApiToken.objects.filter(expires_at__lt=cutoff)
    ).delete()
    return deleted
