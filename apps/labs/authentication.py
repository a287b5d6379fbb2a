"""``Authorization: Bearer <token>`` (or ``Token <token>``) with personal API tokens.

Failed token attempts are counted per client address in Django's cache: past
``API_TOKEN_FAILURE_LIMIT`` failures within ``API_TOKEN_FAILURE_WINDOW`` seconds, every token
request from that address is answered 429 until the window ends (the right token too, or the
answer would still tell a guesser when it found one). The default cache is local to each
process; with several web processes, set ``CACHE_URL`` to a shared cache (Redis).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.labs.security import client_ip
from apps.labs.services import TokenInvalid, api_token_authenticate


def _failure_key(request) -> str:
    return f"labs:api-token-failures:{client_ip(request) or 'unknown'}"


def _check_not_throttled(request) -> None:
    if cache.get(_failure_key(request), 0) >= settings.API_TOKEN_FAILURE_LIMIT:
        raise exceptions.Throttled(
            wait=settings.API_TOKEN_FAILURE_WINDOW,
            detail="Too many failed API token attempts from this address; try again later.",
        )


def _note_failure(request) -> None:
    key = _failure_key(request)
    # The window starts at the first failure: ``add`` sets the expiry, ``incr`` keeps it.
    cache.add(key, 0, timeout=settings.API_TOKEN_FAILURE_WINDOW)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, timeout=settings.API_TOKEN_FAILURE_WINDOW)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        _check_not_throttled(request)
        if len(header) != 2:
            _note_failure(request)
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'."
            )
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            _note_failure(request)
            raise exceptions.AuthenticationFailed("Invalid API token.") from None
        try:
            token = api_token_authenticate(key=key)
        except TokenInvalid as exc:
            _note_failure(request)
            raise exceptions.AuthenticationFailed(str(exc)) from None
        # The roles came with the token (one query); ``LabScopedMixin.lab_roles`` reads them here.
        request._lab_roles = token.lab_roles
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 to unauthenticated calls.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token created under /api/v1/tokens/ or the tokens page.",
        }
