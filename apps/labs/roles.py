"""Who may do what in a lab: the one table, mirrored in the README (a test keeps them equal)."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    RESEARCHER = "researcher", "Researcher"
    READER = "reader", "Reader"
    VIEWER = "viewer", "Viewer"


class Action(StrEnum):
    READ = "read"  # see the lab's data: images, sessions, models, dashboards
    UPLOAD_OWN = "upload_own"  # upload reading sessions in which one is the reader
    WRITE = "write"  # create, change and delete the lab's data; start training and evaluation
    # invite and remove members, change roles, see members' e-mail addresses and the pending
    # invitations, edit or delete the lab (nobody joins without accepting an invitation)
    MANAGE_MEMBERS = "manage_members"


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.READER: frozenset({Action.READ, Action.UPLOAD_OWN}),
    Role.RESEARCHER: frozenset({Action.READ, Action.UPLOAD_OWN, Action.WRITE}),
    Role.ADMIN: frozenset({Action.READ, Action.UPLOAD_OWN, Action.WRITE, Action.MANAGE_MEMBERS}),
}


def role_allows(role: str | None, action: Action) -> bool:
    """Whether ``role`` (None for a non-member) may perform ``action``."""
    if role is None:
        return False
    return action in PERMISSIONS[Role(role)]
