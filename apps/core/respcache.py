"""A cache of the API's read answers in Redis, made stale by the database's own writes.

The API's lists and object reads (``GET`` on a lab-scoped viewset, ``apps.labs.tenancy``) cost
8 to 15 ms of CPU each in Django and DRF, most of it compiling queries and serializing; a cached
answer costs the token's query and one Redis round trip. On with ``RESPONSE_CACHE_URL`` (by
default ``CACHE_URL``: a Redis URL), off when it is empty.

What keeps an answer right:

- **Whose answer.** The key is the absolute URL (scheme, host, path and query), the media type
  negotiated, the view, the user, the token, the user's staff flags and the user's role in every
  lab (read afresh on every request with the token). Two users never share an answer, and a role
  changed, granted or taken away is a different key at once.
- **Which rows it read.** While an answer is built, every SQL statement it runs is read for the
  tables it names; the answer is stored with each table's version as it was *before* the answer
  read anything. Every write (``INSERT``, ``UPDATE``, ``DELETE``, ``COPY``...) through any of the
  platform's processes (web, Celery workers, management commands) bumps its tables' versions:
  at once, and again after its transaction commits. An answer is served only while every table
  it read still has the version it was stored with. The versions are read before the data, and
  bumped after the commit, so an answer built from rows a concurrent transaction was changing
  carries a version that the commit's bump has already made old.
- **Time.** Entries expire after ``RESPONSE_CACHE_TTL`` seconds (default 300), which bounds what
  a write that bypasses the platform (``psql``, a restore) can leave stale; after a restore, run
  ``manage.py response_cache --clear`` (or restart Redis).

Only complete 200 answers up to ``MAX_BYTES`` are stored; streaming answers (CSV exports) never.
If Redis does not answer, reads are built as if there were no cache for a few seconds
(``RETRY_S``), with one warning in the log; the writes made meanwhile are bumped once it answers
again, before any answer is read from it.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import threading
import time
from functools import lru_cache

from django.apps import apps as django_apps
from django.conf import settings
from django.db import connections, transaction
from django.http import HttpResponse

logger = logging.getLogger(__name__)

MAX_BYTES = 1024 * 1024
_WRITE_HEADS = ("INSERT", "UPDATE", "DELETE", "COPY", "TRUNCATE", "REPLACE", "MERGE")
_QUOTED = re.compile(r'"([A-Za-z0-9_]+)"')
_SKIP_HEADERS = {"allow", "vary", "set-cookie", "content-length"}

# The tables the answer being built has read so far; None when no answer is being recorded.
_recording: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "respcache_recording", default=None
)


# --- Tables ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def known_tables() -> frozenset[str]:
    """Every model's table, many-to-many tables included."""
    return frozenset(
        model._meta.db_table for model in django_apps.get_models(include_auto_created=True)
    )


def tables_in(sql: str) -> set[str]:
    """The platform's tables a SQL statement names (Django quotes every table it writes)."""
    names = known_tables()
    return {name for name in _QUOTED.findall(sql) if name in names}


def _is_write(sql: str) -> bool:
    # Runs on every query: only the statement's head is looked at (a bulk INSERT is long).
    return sql[:32].lstrip()[:8].upper().startswith(_WRITE_HEADS)


# --- Redis ----------------------------------------------------------------------------------
def enabled() -> bool:
    return bool(settings.RESPONSE_CACHE_URL)


@lru_cache(maxsize=4)
def _client_for(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def _client():
    return _client_for(settings.RESPONSE_CACHE_URL)


def _prefix() -> str:
    """Per database name (test databases that share a Redis never mix), not per host: a GPU
    worker on another machine reaches the same database by another address."""
    return f"{settings.RESPONSE_CACHE_PREFIX}:{connections['default'].settings_dict['NAME']}:"


def _versions_key() -> str:
    return _prefix() + "versions"


# Redis away: this process stops asking it for RETRY_S (no wait per request), serves every
# read afresh, and keeps the tables it could not bump; the next time Redis answers they are
# bumped before anything is read from the cache again.
RETRY_S = 5.0
_lock = threading.Lock()
_unbumped: set[str] = set()
_down_until = 0.0


def _down(exc: Exception, what: str) -> None:
    global _down_until
    with _lock:
        was_up = time.monotonic() >= _down_until
        _down_until = time.monotonic() + RETRY_S
    if was_up:
        logger.warning("response cache: Redis did not answer (%s): %s; reads are built afresh, "
                       "and the cache is tried again in %g s", what, exc, RETRY_S)  # fmt: skip


def bump(tables) -> bool:
    """Make every stored answer that read one of ``tables`` stale; False if Redis is away
    (the tables are then bumped at the next chance)."""
    if not enabled():
        return True
    with _lock:
        tables = set(tables) | _unbumped
        _unbumped.clear()
        if not tables:
            return True
        if time.monotonic() < _down_until:
            _unbumped.update(tables)
            return False
    key = _versions_key()
    try:
        with _client().pipeline(transaction=False) as pipe:
            for table in sorted(tables):
                pipe.hincrby(key, table, 1)
            pipe.execute()
    except Exception as exc:
        with _lock:
            _unbumped.update(tables)
        _down(exc, "marking tables as changed")
        return False
    return True


class _AfterCommit:
    """The tables a transaction wrote, bumped again once it commits."""

    def __init__(self) -> None:
        self.tables: set[str] = set()

    def __call__(self) -> None:
        bump(self.tables)


def note_write(tables, using: str = "default") -> None:
    """Rows of ``tables`` were (or are being) written on the ``using`` connection.

    Bumped now, so that the writer's own transaction reads afresh, and, inside a transaction,
    again once it commits (an answer built meanwhile from the old rows is then stale).
    """
    tables = set(tables)
    if not tables or not enabled():
        return
    bump(tables)
    conn = connections[using]
    if conn.in_atomic_block:
        pending = next((f for _, f, _ in conn.run_on_commit if isinstance(f, _AfterCommit)), None)
        if pending is None:
            pending = _AfterCommit()
            transaction.on_commit(pending, using=using)
        pending.tables |= tables


def execute_wrapper(execute, sql, params, many, context):
    """On every connection: writes bump their tables; an answer being recorded notes its reads."""
    result = execute(sql, params, many, context)
    text = sql if isinstance(sql, str) else str(sql)
    if _is_write(text):
        note_write(tables_in(text), context["connection"].alias)
    else:
        reading = _recording.get()
        if reading is not None:
            reading |= tables_in(text)
    return result


def install(sender=None, connection=None, **kwargs) -> None:
    """``connection_created``: first among the wrappers, so that a ``with execute_wrapper()``
    around the connection's first query (``QueryCountMiddleware``) pops its own wrapper."""
    if execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, execute_wrapper)


# --- Answers --------------------------------------------------------------------------------
def _entry_key(view, request) -> str:
    user = request.user
    auth = getattr(request, "auth", None)
    parts = [
        request.method,
        request.build_absolute_uri(),
        request.accepted_media_type or "",
        f"{type(view).__module__}.{type(view).__qualname__}",
        str(user.pk),
        f"{int(user.is_staff)}{int(user.is_superuser)}",
        str(getattr(auth, "pk", "session")),
        json.dumps(sorted(view.lab_roles().items())),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"{_prefix()}answer:{digest}"


def _decode(raw: bytes) -> tuple[dict, bytes]:
    head, _, body = raw.partition(b"\n")
    return json.loads(head), body


def _fresh(entry: dict, versions: dict[bytes, bytes]) -> bool:
    return all(
        versions.get(table.encode(), b"0").decode() == version
        for table, version in entry["tables"].items()
    )


def _store(key: str, response, tables: set[str], versions: dict[bytes, bytes]) -> None:
    body = response.content
    if len(body) > MAX_BYTES:
        return
    entry = {
        "tables": {t: versions.get(t.encode(), b"0").decode() for t in sorted(tables)},
        "headers": [[k, v] for k, v in response.items() if k.lower() not in _SKIP_HEADERS],
    }
    try:
        _client().set(key, json.dumps(entry).encode() + b"\n" + body,
                      ex=settings.RESPONSE_CACHE_TTL)  # fmt: skip
    except Exception as exc:
        _down(exc, "storing an answer")


def _cacheable(response) -> bool:
    return response.status_code == 200 and not response.streaming and not response.cookies


def cached(view, handler):
    """``handler`` (a viewset's ``get``), answering from the cache while the answer is fresh."""

    def serve(request, *args, **kwargs):
        if not bump(()):  # Redis away, or writes of this process it has not heard of yet
            return handler(request, *args, **kwargs)
        key = _entry_key(view, request)
        try:
            with _client().pipeline(transaction=False) as pipe:
                raw, versions = pipe.get(key).hgetall(_versions_key()).execute()
        except Exception as exc:
            _down(exc, "reading an answer")
            return handler(request, *args, **kwargs)
        if raw is not None:
            entry, body = _decode(raw)
            if _fresh(entry, versions):
                response = HttpResponse(body)
                for name, value in entry["headers"]:
                    response[name] = value
                response["X-Response-Cache"] = "hit"
                return response
        reading = set()
        token = _recording.set(reading)
        try:
            response = handler(request, *args, **kwargs)
        except BaseException:
            _recording.reset(token)
            raise
        if not _cacheable(response):
            _recording.reset(token)
            return response
        response["X-Response-Cache"] = "miss"

        def done(rendered):
            _recording.set(None)  # the render may run after this context's reset point
            if _cacheable(rendered):
                _store(key, rendered, reading, versions)

        if hasattr(response, "add_post_render_callback") and not response.is_rendered:
            response.add_post_render_callback(done)
        else:
            done(response)
        return response

    return serve


def clear() -> int:
    """Make every stored answer of this database stale and drop them; returns how many."""
    global _down_until
    _down_until = 0.0  # asked by hand: try Redis now
    if not bump(known_tables()):  # versions only grow: an answer stored meanwhile is stale too
        raise RuntimeError("Redis did not answer")
    client, n = _client(), 0
    for key in client.scan_iter(match=_prefix() + "answer:*", count=500):
        n += client.delete(key)
    return n
