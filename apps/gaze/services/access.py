"""Who may do what to readers' sessions and recordings beyond their lab role's plain write right.

Researchers and admins (``Action.WRITE``) create and change any session of their lab and upload
to it; readers (``Action.UPLOAD_OWN``) only those whose reader is linked to them. The API and the
pages ask here, and map :class:`~django.core.exceptions.PermissionDenied` to 403.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from apps.gaze.models import Reader, ReadingSession
from apps.labs.models import Lab, User
from apps.labs.roles import Action, role_allows
from apps.labs.selectors import lab_roles_for_user


def lab_role(lab: Lab | int, user: User) -> str | None:
    """``user``'s role in ``lab``, or None when not a member."""
    return lab_roles_for_user(user=user).get(lab if isinstance(lab, int) else lab.pk)


def reading_session_owned(*, role: str | None, reader_user_id: int | None, user: User) -> bool:
    """Whether ``user``, whose role in the lab is ``role``, may change what belongs to a session
    of their own as a reader: ``reader_user_id`` is the user linked to the session's reader."""
    return role_allows(role, Action.UPLOAD_OWN) and reader_user_id == user.pk


def can_upload_to(*, session: ReadingSession, user: User) -> bool:
    """Researchers and admins upload to any session of their lab; readers to their own."""
    role = lab_role(session.lab_id, user)
    if role_allows(role, Action.WRITE):
        return True
    return role_allows(role, Action.UPLOAD_OWN) and session.reader.user_id == user.pk


def can_change_session(*, session: ReadingSession, user: User) -> bool:
    """Whether ``user`` may change ``session`` and what belongs to it (its geometry, re-parse
    and delete its recordings, delete it): the API's rule (``OwnSessionMixin``), the same as for
    uploads. Changing the session's reader is researchers' and admins' alone
    (:func:`reading_session_check_update`)."""
    return can_upload_to(session=session, user=user)


def check_can_upload(*, session: ReadingSession, user: User) -> None:
    """Raise PermissionDenied unless ``user`` may upload to ``session``."""
    if not can_upload_to(session=session, user=user):
        raise PermissionDenied("Your role in this lab does not allow uploads to this session.")


def reading_session_check_create(*, lab: Lab, reader: Reader, user: User) -> None:
    """Raise PermissionDenied unless ``user`` may create a session of ``reader`` in ``lab``
    (researchers and admins: of any reader; readers: of the reader linked to them)."""
    role = lab_role(lab, user)
    own = reader.user_id == user.pk and role_allows(role, Action.UPLOAD_OWN)
    if not (role_allows(role, Action.WRITE) or own):
        raise PermissionDenied("Your role in this lab does not allow creating this session.")


def reading_session_check_update(
    *, session: ReadingSession, user: User, changes: dict[str, Any]
) -> None:
    """Raise PermissionDenied when ``changes`` include what only researchers and admins change
    (the session's reader). Whether ``user`` may change the session at all is the caller's
    object permission."""
    if changes.get("reader") is not None and not role_allows(
        lab_role(session.lab_id, user), Action.WRITE
    ):
        raise PermissionDenied("Only researchers and admins change a session's reader.")
