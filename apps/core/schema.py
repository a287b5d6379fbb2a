"""The OpenAPI schema tells the truth about errors: every operation documents the 4xx and 5xx
answers it can give, in the one error shape (``apps.core.api.error_body``).

A drf-spectacular post-processing hook, so that no view has to repeat it. Which codes:

- 400 wherever input is read: a body, query parameters (filters, ordering, page size) or a path
  id of the wrong form;
- 401 and 403 on every operation that needs an authenticated user (all but health and the
  schema), 403 also for a role that may not write;
- 404 on operations with a path id (another lab's objects, or none) and on lists (a page past the
  end);
- 413 where files are uploaded, 429 where throttles apply (authentication failures), and 500 with
  a request id for a bug.

An operation's own declaration of a code wins.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of the API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "A stable machine-readable code."},
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "fields": {
                    "type": "object",
                    "description": "Field (dotted path) -> messages, for invalid input.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "request_id": {
                    "type": "string",
                    "description": "On a server error: the id under which it is logged.",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}

_DESCRIPTIONS = {
    "400": "Invalid input: the message and `fields` name what is wrong.",
    "401": "No valid credentials (a missing, unknown, expired or revoked token).",
    "403": "Authenticated, but this role may not do this.",
    "404": "No such object in your labs (another lab's objects do not exist for you).",
    "409": "A lab's quota of stored files would be passed (code `quota_exceeded`).",
    "413": "The upload is larger than the server accepts.",
    "429": "Too many requests (failed authentications): wait and try again.",
    "500": "A bug: the answer carries the request id under which it is logged.",
}

_PUBLIC = ("/api/v1/health/",)


def _response(code: str) -> dict:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry: add the error answers to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            codes = ["400", "404", "429", "500"]
            if path not in _PUBLIC:
                codes += ["401", "403"]
            if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                codes.append("413")
            if "saliency" in path or method == "post":
                codes.append("409")  # a lab's quota of derived files, a state that forbids it
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(code, _response(code))
    return result
