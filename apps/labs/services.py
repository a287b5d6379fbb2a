"""Writes to labs, memberships and API tokens: each change has exactly one function."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.labs.models import ApiToken, Invitation, Lab, Membership, User
from apps.labs.roles import Action, Role, role_allows
from apps.labs.selectors import api_token_by_hash, membership_role

TOKEN_PREFIX = "cxr_"

log = logging.getLogger(__name__)


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


def lab_update(*, lab: Lab, actor: User, **fields) -> Lab:
    """Change a lab's name, slug, description or quality thresholds (lab admins).

    ``quality_thresholds`` changes the limits it names (a value sets one, None gives it back to
    the server's default; see :func:`quality_thresholds_clean`) and keeps the others.
    """
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    slug = fields.get("slug")
    if slug and Lab.objects.filter(slug=slug).exclude(pk=lab.pk).exists():
        raise ValidationError({"slug": f"A lab with the slug {slug!r} exists already."})
    if "name" in fields and not str(fields["name"]).strip():
        raise ValidationError({"name": "A lab needs a name."})
    if "quality_thresholds" in fields:
        fields["quality_thresholds"] = quality_thresholds_clean(
            {**lab.quality_thresholds, **(fields["quality_thresholds"] or {})}
        )
    for name, value in fields.items():
        setattr(lab, name, value)
    lab.save(update_fields=list(fields))
    return lab


def lab_delete(*, lab: Lab, actor: User) -> None:
    """Delete a lab and everything it owns (lab admins); stored files follow once the deletion
    commits (``apps.core.files``)."""
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    with transaction.atomic():
        lab.delete()


# How the rows a lab owns are named when its deletion is confirmed, in this order.
_IMPACT_NAMES = {
    "labs.Membership": "memberships",
    "labs.Invitation": "invitations",
    "imaging.Image": "images",
    "imaging.ImageClass": "label classes",
    "imaging.ImageRegion": "image regions",
    "imaging.DeidentificationAudit": "de-identification audit entries",
    "imaging.UploadBatch": "upload batches",
    "gaze.Reader": "readers",
    "gaze.ReadingSession": "reading sessions",
    "gaze.Recording": "recordings",
    "gaze.Reading": "readings",
    "gaze.Fixation": "fixations",
    "gaze.SaliencyMap": "saliency maps",
    "datasets.DatasetSnapshot": "dataset snapshots",
    "training.TrainingJob": "training jobs",
    "training.ModelVersion": "model versions",
    "training.ModelAlias": "model aliases",
    "evaluation.Evaluation": "evaluations",
    "webhooks.Webhook": "webhooks",
}
_IMPACT_HIDDEN = {"imaging.LabImagingKey"}  # the lab's UID key: one row, never shown


def lab_delete_impact(*, lab: Lab) -> list[tuple[str, int]]:
    """What goes with ``lab`` when it is deleted: ``(what, count)`` for each kind of row the lab
    owns (every model with a ``lab`` key to it), the kinds it has none of left out."""
    from django.apps import apps

    counts: dict[str, int] = {}
    for model in apps.get_models():
        label = model._meta.label
        owned = any(
            f.name == "lab" and getattr(f, "related_model", None) is Lab
            for f in model._meta.concrete_fields
        )
        if not owned or label in _IMPACT_HIDDEN:
            continue
        n = model._default_manager.filter(lab=lab).count()
        if n:
            counts[_IMPACT_NAMES.get(label, str(model._meta.verbose_name_plural))] = n
    order = list(_IMPACT_NAMES.values())
    rows = sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    return [(_one(what) if n == 1 else what, n) for what, n in rows]


def _one(plural: str) -> str:
    """The singular of one of the plural names above ("1 reader", "1 model alias")."""
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith(("ches", "ases", "sses")):
        return plural[:-2]
    return plural.removesuffix("s")


# --- Quality thresholds of the gaze grade ------------------------------------------------------

# The limits a lab may set (the keys of settings.GAZE_QUALITY_THRESHOLDS): name -> (what it
# limits, unit). "%" limits are percentages (0-100), "°" ones degrees of visual angle (> 0).
QUALITY_THRESHOLD_FIELDS: dict[str, tuple[str, str]] = {
    "good_valid_pct": ("Valid samples: good from", "%"),
    "usable_valid_pct": ("Valid samples: usable from", "%"),
    "good_on_image_pct": ("Gaze on the image: good from", "%"),
    "usable_on_image_pct": ("Gaze on the image: usable from", "%"),
    "good_error_deg": ("Validation error: good up to", "°"),
    "usable_error_deg": ("Validation error: usable up to", "°"),
    "min_fixations": ("Fewest fixations (fewer: poor)", ""),
}
# (good, usable, higher is better): a good limit never asks less than its usable one.
QUALITY_THRESHOLD_PAIRS = (
    ("good_valid_pct", "usable_valid_pct", True),
    ("good_on_image_pct", "usable_on_image_pct", True),
    ("good_error_deg", "usable_error_deg", False),
)


def quality_threshold_defaults() -> dict[str, float | int]:
    """The server's limits (``GAZE_QUALITY_*`` settings): what a lab without its own uses."""
    return {name: settings.GAZE_QUALITY_THRESHOLDS[name] for name in QUALITY_THRESHOLD_FIELDS}


def lab_quality_thresholds(*, lab: Lab) -> dict[str, float | int]:
    """The limits that grade ``lab``'s readings: the lab's own, the server's for the rest."""
    own = lab.quality_thresholds or {}
    return {
        name: own[name] if own.get(name) is not None else default
        for name, default in quality_threshold_defaults().items()
    }


def _threshold_value(name: str, value) -> float | int:
    unit = QUALITY_THRESHOLD_FIELDS[name][1]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError({name: "Give a number."})
    if name == "min_fixations":
        if value != int(value) or not 0 <= value <= 100_000:
            raise ValidationError({name: "Give a whole number from 0 to 100000."})
        return int(value)
    if unit == "%" and not 0 <= value <= 100:
        raise ValidationError({name: "Give a percentage from 0 to 100."})
    if unit == "°" and not 0 < value <= 90:
        raise ValidationError({name: "Give degrees above 0 (at most 90)."})
    return float(value)


def quality_thresholds_clean(overrides: dict) -> dict[str, float | int]:
    """Check a lab's own limits; returns them without the unset ones.

    Args:
        overrides: ``{name: value}``; None (or a name left out) takes the server's default.

    Raises:
        ValidationError: keyed by the limit's name: an unknown name, a value out of range
            (percentages 0-100, degrees above 0, a whole number of fixations), or a good limit
            below its usable one (above it, for the validation error) once the server's
            defaults fill in the rest.
    """
    errors: dict[str, list[str]] = {}
    clean: dict[str, float | int] = {}
    for name, value in overrides.items():
        if name not in QUALITY_THRESHOLD_FIELDS:
            errors[str(name)] = [
                f"Unknown limit; the limits are {', '.join(QUALITY_THRESHOLD_FIELDS)}."
            ]
        elif value is not None:
            try:
                clean[name] = _threshold_value(name, value)
            except ValidationError as exc:
                errors[name] = exc.message_dict[name]
    if not errors:
        effective = {**quality_threshold_defaults(), **clean}
        for good, usable, higher in QUALITY_THRESHOLD_PAIRS:
            g, u = effective[good], effective[usable]
            if not ((g < u) if higher else (g > u)):
                continue
            unit = QUALITY_THRESHOLD_FIELDS[good][1]
            if good in clean:
                word = "at least" if higher else "at most"
                errors[good] = [f"Good must be {word} the usable limit ({u:g}{unit})."]
            else:
                word = "at most" if higher else "at least"
                errors[usable] = [f"Usable must be {word} the good limit ({g:g}{unit})."]
    if errors:
        raise ValidationError(errors)
    return clean


def _admin_count(lab: Lab) -> int:
    return Membership.objects.filter(lab=lab, role=Role.ADMIN).count()


@transaction.atomic
def membership_create_trusted(*, lab: Lab, user: User, role: str) -> Membership:
    """Put ``user`` into ``lab`` with ``role`` without asking them.

    For trusted internal callers only (management commands, fixtures, and the acceptance of an
    invitation): no request reaches this directly, since nobody may be added to a lab without
    their consent. Lab admins invite (``invitation_create``); the invitee accepts.
    """
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
    """Find the active token for ``key`` and note its use; raise ``TokenInvalid`` otherwise.

    The token comes with its user and ``lab_roles``, its user's ``{lab_id: role}``, read in one
    query (``selectors.api_token_by_hash``): every API call needs all three.
    """
    token = api_token_by_hash(key_hash=_hash_key(key)) if key.startswith(TOKEN_PREFIX) else None
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


# --- Invitations ------------------------------------------------------------------------------


class InvitationUnusable(Exception):
    """The invitation link cannot be used; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def invitation_create(
    *,
    lab: Lab,
    actor: User,
    invitee: str,
    role: str,
    build_url: Callable[[str], str],
) -> tuple[Invitation, str]:
    """Invite ``invitee`` (an e-mail address, or a username) to ``lab`` as ``role`` (lab admins).

    Returns the invitation and its accept link, which is shown to the admin once (only its hash
    is stored) so that a lab without mail can pass it on. The link is also mailed: to the address
    for an e-mail invitation, to the account's address for a username invitation. The answer is
    the same whether or not the username exists: an invitation to a username that no active
    account has is stored like any other and simply never delivered, nor can it be accepted.
    """
    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    invitee = invitee.strip()
    email = username = ""
    invited_user = None
    if "@" in invitee:
        try:
            validate_email(invitee)
        except ValidationError:
            raise ValidationError(
                {"invitee": "Enter a valid e-mail address or a username."}
            ) from None
        email = invitee
    else:
        if not invitee or len(invitee) > 150:
            raise ValidationError({"invitee": "Enter a valid e-mail address or a username."})
        username = invitee
        invited_user = User.objects.filter(username=username, is_active=True).first()
        # The admin sees the lab's members, so saying this tells them nothing new.
        if (
            invited_user is not None
            and Membership.objects.filter(lab=lab, user=invited_user).exists()
        ):
            raise ValidationError({"invitee": f"{username} is already a member of {lab.name}."})
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        lab=lab,
        role=Role(role),
        email=email,
        username=username,
        invited_user=invited_user,
        invited_by=actor,
        token_hash=_hash_key(token),
        expires_at=timezone.now() + timedelta(days=settings.LAB_INVITATION_DAYS),
    )
    url = build_url(token)
    address = email or (invited_user.email if invited_user is not None else "")
    if address:
        _invitation_send(invitation=invitation, address=address, url=url)
    return invitation, url


def _invitation_send(*, invitation: Invitation, address: str, url: str) -> None:
    inviter = invitation.invited_by
    who = (inviter.get_full_name() or inviter.username) if inviter else "A lab admin"
    role = Role(invitation.role).label.lower()
    body = (
        f"{who} invites you to join the lab {invitation.lab.name} on the CXR gaze platform "
        f"as {role}.\n\n"
        f"Open this link to accept (it works once, until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n\n{url}\n\n"
        "If you did not expect this invitation, ignore this message: nothing happens unless "
        "you accept it.\n"
    )
    try:
        send_mail(
            f"Invitation to join {invitation.lab.name}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [address],
        )
    except Exception:  # the admin has the link anyway; a mail server's failure is no 500
        log.exception("Could not send invitation %s by e-mail", invitation.pk)


def invitation_revoke(*, invitation: Invitation, actor: User) -> Invitation:
    """Withdraw an invitation (lab admins); its link stops working. It stays as revoked."""
    require_action(user=actor, lab=invitation.lab, action=Action.MANAGE_MEMBERS)
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def invitation_find(*, token: str) -> Invitation:
    """The usable invitation of the link ``token``; raise ``InvitationUnusable`` otherwise."""
    invitation = (
        Invitation.objects.select_related("lab", "invited_by", "invited_user")
        .filter(token_hash=_hash_key(token))
        .first()
        if token and len(token) <= 200
        else None
    )
    if invitation is None:
        raise InvitationUnusable(
            "This invitation link is not valid. Check that it is complete.", 404
        )
    status = invitation.status
    if status == "accepted":
        raise InvitationUnusable("This invitation has already been used.", 410)
    if status == "revoked":
        raise InvitationUnusable("This invitation was withdrawn by the lab's admin.", 410)
    if status == "expired":
        raise InvitationUnusable(
            "This invitation has expired. Ask the lab's admin for a new one.", 410
        )
    return invitation


def invitation_check_acceptor(*, invitation: Invitation, user: User) -> None:
    """Raise ``PermissionDenied`` or ``ValidationError`` unless ``user`` may accept now."""
    if invitation.username and invitation.invited_user_id != user.pk:
        raise PermissionDenied(
            "This invitation is addressed to another account. Sign in as that account to accept it."
        )
    if Membership.objects.filter(lab=invitation.lab, user=user).exists():
        raise ValidationError(f"You are already a member of {invitation.lab.name}.")


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Accept the invitation of the link ``token`` for ``user``'s own account.

    An invitation to a username is for that account only; one to an e-mail address is for
    whoever holds the link (the link is the proof, not the account's e-mail field). Raises
    ``InvitationUnusable`` (not found, used, withdrawn, expired), ``PermissionDenied`` (another
    account's invitation) or ``ValidationError`` (already a member).
    """
    found = invitation_find(token=token)
    # Lock the row so that one link makes one membership, even when clicked twice at once.
    invitation = Invitation.objects.select_for_update().get(pk=found.pk)
    if not invitation.is_pending:
        raise InvitationUnusable("This invitation has already been used.", 410)
    invitation_check_acceptor(invitation=found, user=user)
    membership = membership_create_trusted(lab=found.lab, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def invitation_accept_with_new_account(
    *, token: str, username: str, password: str
) -> tuple[User, Membership]:
    """Create an account (for an e-mail invitation) and accept the invitation with it, at once.

    The caller has validated the username and the password (the sign-up form does).
    """
    invitation = invitation_find(token=token)
    if invitation.username:
        raise PermissionDenied(
            "This invitation is addressed to an existing account. Sign in as that account to "
            "accept it."
        )
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that username already exists."})
    user = User(username=username, email=invitation.email)
    user.set_password(password)
    user.save()
    return user, invitation_accept(token=token, user=user)


def invitation_purge(*, older_than_days: int = 30) -> int:
    """Delete invitations used, withdrawn or expired more than ``older_than_days`` ago."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = (
        Invitation.objects.filter(accepted_at__lt=cutoff)
        | Invitation.objects.filter(revoked_at__lt=cutoff)
        | Invitation.objects.filter(expires_at__lt=cutoff)
    ).delete()
    return deleted
