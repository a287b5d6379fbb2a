"""``X-Query-Count``: how many database queries a request made (for benchmarks and debugging).

Installed by ``config.settings`` only when ``QUERY_COUNT_HEADER`` is on (``apps.core.loadbench``
turns it on for its server), first in ``MIDDLEWARE`` so that it counts the queries of every other
middleware too (sessions, the current lab). Off, it is not in the stack at all and costs nothing.

The count covers the queries of the default database connection made until the response is
returned. A streaming response (fixations or per-image rows as CSV) makes its body's queries
after its headers are gone: there the header counts the queries before the body, and
``X-Query-Count-Streaming: true`` says so.
"""

from __future__ import annotations

from django.db import connection

HEADER = "X-Query-Count"
STREAMING_HEADER = "X-Query-Count-Streaming"


class _Counter:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        counter = _Counter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        response[HEADER] = str(counter.n)
        if response.streaming:
            response[STREAMING_HEADER] = "true"
        return response
