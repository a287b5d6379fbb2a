"""Every request gets an id, and an unhandled error under /api/ answers the API's error shape.

The id is taken from a well-formed ``X-Request-ID`` header (a reverse proxy's) or made here; it is
on every response as ``X-Request-ID``, and in the log line of any unhandled error, so that a
lab's report of a 500 ("request 3f2a...") finds its traceback.
"""

from __future__ import annotations

import logging
import re
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api import error_body

log = logging.getLogger("apps.errors")

_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_of(request: HttpRequest) -> str:
    rid = getattr(request, "request_id", None)
    if rid is None:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        request.request_id = rid
    return rid


def server_error_response(request: HttpRequest) -> JsonResponse:
    rid = request_id_of(request)
    body = error_body("server_error", f"Internal server error (request {rid}).")
    body["error"]["request_id"] = rid
    response = JsonResponse(body, status=500)
    response["X-Request-ID"] = rid
    return response


def _is_html(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("text/html")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id_of(request)
        response = self.get_response(request)
        if request.path.startswith("/api/") and _is_html(response):
            # Django's own pages for a path no route matches (or an error raised outside any
            # view): in development its HTML debug pages. The API answers in its one shape.
            if response.status_code == 404:
                response = JsonResponse(
                    error_body("not_found", f"No API route at {request.path}."), status=404
                )
            elif response.status_code >= 500:
                response = server_error_response(request)
        response["X-Request-ID"] = rid
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Unhandled errors of API views: logged with the request id, answered as JSON (in
        development too, where Django would show its HTML traceback page)."""
        if not request.path.startswith("/api/"):
            return None
        log.error(
            "Unhandled error in %s %s (request %s)",
            request.method,
            request.path,
            request_id_of(request),
            exc_info=(type(exception), exception, exception.__traceback__),
        )
        return server_error_response(request)
