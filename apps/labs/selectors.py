"""Reads of labs, memberships and tokens, always scoped to the asking user."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from apps.labs.models import ApiToken, Invitation, Lab, Membership, User


def lab_list_for_user(*, user: User) -> QuerySet[Lab]:
    """The labs ``user`` belongs to."""
    if not user.is_authenticated:
        return Lab.objects.none()
    return Lab.objects.filter(memberships__user=user).distinct()


def lab_roles_for_user(*, user: User) -> dict[int, str]:
    """``{lab_id: role}`` for every lab ``user`` belongs to."""
    if not user.is_authenticated:
        return {}
    return dict(Membership.objects.filter(user=user).values_list("lab_id", "role"))


def membership_role(*, user: User, lab: Lab | int) -> str | None:
    """The role of ``user`` in ``lab``, or None when not a member."""
    if not user.is_authenticated:
        return None
    lab_id = lab if isinstance(lab, int) else lab.pk
    return lab_roles_for_user(user=user).get(lab_id)


def membership_list(*, user: User, lab: Lab | None = None) -> QuerySet[Membership]:
    """Memberships of the labs ``user`` belongs to (optionally of one lab)."""
    memberships = Membership.objects.filter(lab__in=lab_list_for_user(user=user)).select_related(
        "user", "lab"
    )
    if lab is not None:
        memberships = memberships.filter(lab=lab)
    return memberships


def invitation_list(*, user: User) -> QuerySet[Invitation]:
    """Invitations to the labs ``user`` belongs to (whether ``user`` may manage them or not)."""
    return Invitation.objects.filter(lab__in=lab_list_for_user(user=user)).select_related(
        "lab", "invited_by"
    )


def invitation_list_pending(*, user: User, lab: Lab) -> QuerySet[Invitation]:
    """The pending invitations of ``lab``, if ``user`` belongs to it: newest first."""
    return invitation_list(user=user).filter(
        lab=lab,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    )


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The personal API tokens of ``user``, newest first."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user)
