"""Tenancy in one place: every lab-owned API resource goes through this mixin and permission.

A viewset declares ``tenancy``: ``"lab"`` for rows owned by a lab (reached through
``lab_field``), ``"user"`` for rows owned by the requesting user, ``"public"`` for the few routes
anyone may call. Querysets are filtered to the requesting user's labs before any lookup, so an
object of another lab is simply not found (404), never forbidden (403), and its existence does
not leak. The tenancy test walks every registered route and holds each to this.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from apps.labs.models import Lab
from apps.labs.roles import Action, role_allows
from apps.labs.selectors import lab_roles_for_user

SAFE_METHODS = permissions.SAFE_METHODS


def _lab_of(obj, lab_field: str) -> int:
    target = obj
    for part in lab_field.split("__"):
        target = getattr(target, part)
    return target.pk if isinstance(target, Lab) else target


class LabRolePermission(permissions.BasePermission):
    """Reads need ``Action.READ`` in the object's lab, writes the view's ``write_action``."""

    message = "Your role in this lab does not allow this."

    def has_object_permission(self, request, view, obj) -> bool:
        action = Action.READ if request.method in SAFE_METHODS else view.write_action
        return view.allows(obj, action)


class LabScopedMixin:
    """Scope a viewset's queryset to the requesting user's labs and check roles per object."""

    tenancy = "lab"
    lab_field = "lab"
    write_action: Action = Action.WRITE

    def lab_roles(self) -> dict[int, str]:
        # Cached per request: the permission and the queryset both need it.
        cache = getattr(self.request, "_lab_roles", None)
        if cache is None:
            cache = lab_roles_for_user(user=self.request.user)
            self.request._lab_roles = cache
        return cache

    def get_permissions(self):
        return [*super().get_permissions(), LabRolePermission()]

    def allows(self, obj, action: Action) -> bool:
        """Whether the requesting user's role in ``obj``'s lab allows ``action``."""
        return role_allows(self.lab_roles().get(_lab_of(obj, self.lab_field)), action)

    def scope(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{f"{self.lab_field}__in": list(self.lab_roles())})

    def get_queryset(self):
        return self.scope(super().get_queryset())

    def require_lab_action(self, lab: Lab, action: Action | None = None) -> None:
        """For creates: the lab named in the body must allow ``action`` (default: write_action)."""
        if not role_allows(self.lab_roles().get(lab.pk), action or self.write_action):
            raise PermissionDenied(LabRolePermission.message)


class UserOwnedMixin:
    """Rows that belong to the requesting user alone (tokens)."""

    tenancy = "user"
    user_field = "user"

    def get_queryset(self):
        return super().get_queryset().filter(**{self.user_field: self.request.user})
