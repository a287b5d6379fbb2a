"""Tenancy in one place: every lab-owned API resource goes through this mixin and permission.

A viewset declares ``tenancy``: ``"lab"`` for rows owned by a lab (reached through
``lab_field``), ``"user"`` for rows owned by the requesting user, ``"public"`` for the few routes
anyone may call. Querysets are filtered to the requesting user's labs before any lookup, so an
object of another lab is simply not found (404), never forbidden (403), and its existence does
not leak. The tenancy test walks every registered route and holds each to this.
"""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django.db import models
from django.db.models import QuerySet
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied
from rest_framework.filters import OrderingFilter
from rest_framework.generics import get_object_or_404

from apps.core import respcache
from apps.labs.models import Lab
from apps.labs.roles import Action, role_allows
from apps.labs.selectors import lab_roles_for_user

SAFE_METHODS = permissions.SAFE_METHODS


def _lab_of(obj, lab_field: str) -> int:
    """The id of ``obj``'s lab through ``lab_field`` (``lab``, ``evaluation__lab``...): the last
    step reads the foreign key's id, not the Lab row (a query per object read otherwise)."""
    *path, last = lab_field.split("__")
    target = obj
    for part in path:
        target = getattr(target, part)
    if isinstance(target, Lab):  # lab_field names the lab's own field (``lab__pk``...)
        return target.pk
    value = getattr(target, f"{last}_id", None)
    if value is not None:
        return value
    value = getattr(target, last)
    return value.pk if isinstance(value, Lab) else value


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

    # Reads answered from ``apps.core.respcache`` while fresh; a view whose answers depend on
    # anything but its rows and the asking user (the clock, say) sets this to False.
    response_cache = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticated, permitted, negotiated
        handler = getattr(self, "get", None)  # None on a POST-only action: DRF answers 405
        if handler and request.method == "GET" and self.response_cache and respcache.enabled():
            self.get = respcache.cached(self, handler)

    def allows(self, obj, action: Action) -> bool:
        """Whether the requesting user's role in ``obj``'s lab allows ``action``."""
        return role_allows(self.lab_roles().get(_lab_of(obj, self.lab_field)), action)

    def scope(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{f"{self.lab_field}__in": list(self.lab_roles())})

    def get_queryset(self):
        return self.scope(super().get_queryset())

    def get_object(self):
        """DRF's ``get_object`` without the list's filter backends: an object is found by its
        id in the scoped queryset alone (``?label=...`` filters a list, not ``/images/7/``), and
        building the filterset for nothing was a tenth of an object read's CPU."""
        lookup = self.lookup_url_kwarg or self.lookup_field
        obj = get_object_or_404(self.get_queryset(), **{self.lookup_field: self.kwargs[lookup]})
        self.check_object_permissions(self.request, obj)
        return obj

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


# --- Filters that do not tell another lab's ids from ids that do not exist ------------------
#
# django-filter's default filter for a foreign key (``?lab=3``, ``?reader=7``) checks the id
# against every row of the related table: an id that exists nowhere is a 400 ("Select a valid
# choice"), while another lab's id passes and filters the (already scoped) list to nothing. That
# difference tells anyone which ids exist in other labs. These filters take the id as a plain
# number and filter the scoped queryset with it, so both answer the same empty list; a value
# that is no id at all ("abc", "-1", or past 64 bits) is a 400 whatever exists.

MAX_ID = 2**63 - 1


class IdFormField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)  # past 64 bits the database would fail (500)
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.Filter):
    """Filter on a related object's id without looking the id up anywhere."""

    field_class = IdFormField


class UtcDateTimeFormField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC: PostgreSQL refuses a UTC offset past 15:59 (a
    500 for ``-19:44``), and a date near year 1 or 9999 may leave the range once converted."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Is out of the range of dates.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeFormField


class TenantFilterSet(django_filters.FilterSet):
    """A FilterSet whose foreign keys filter by plain id (see ``IdFilter``).

    Use it as the base of a view's ``filterset_class``, or let ``TenantFilterBackend`` build one
    from the view's ``filterset_fields``.
    """

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.DateTimeField: {"filter_class": UtcDateTimeFilter},
    }


class TenantFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` whose automatic filtersets are ``TenantFilterSet``s.

    On a view: ``filter_backends = [TenantFilterBackend, OrderingFilter]`` (what the labs
    app's viewsets do); or project-wide in ``REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]``.
    """

    filterset_base = TenantFilterSet


TENANT_FILTER_BACKENDS = [TenantFilterBackend, OrderingFilter]
