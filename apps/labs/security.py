"""Security helpers: the client's address, login lockout page, and the Permissions-Policy header.

The login lockout itself is django-axes (see the settings' "Accounts and security" block); the
throttle of failed API tokens is in ``apps.labs.authentication``.
"""

from __future__ import annotations

import ipaddress
import math

from django.conf import settings
from django.shortcuts import render


def client_ip(request) -> str | None:
    """The address a request came from.

    ``REMOTE_ADDR``, unless ``TRUSTED_PROXY_COUNT`` reverse proxies are in front of the server:
    each appends the address it saw to ``X-Forwarded-For``, so the entry that many places from
    the right is the one the first trusted proxy saw (entries further left are the client's to
    forge). Without the setting behind a proxy, every client would share the proxy's address.
    """
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            return _address(forwarded[-count])
    return _address(request.META.get("REMOTE_ADDR", ""))


def _address(value: str) -> str | None:
    """``value`` if it is an IPv4 or IPv6 address, else None (a request made in-process, such as
    the test client's ``force_login``, or a forged header: never a value the database refuses)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out sign-in: a page with status 429, never an error."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = math.ceil(cooloff.total_seconds() / 60) if cooloff else None
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


class PermissionsPolicyMiddleware:
    """Adds ``Permissions-Policy`` (``settings.PERMISSIONS_POLICY``) to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = policy
        return response
