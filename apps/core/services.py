"""Health of the platform's components."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from config.celery import app as celery_app


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = {"ok": True, **(check() or {})}
    except Exception as exc:  # any failure of a dependency is a finding here, not a crash
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _broker() -> dict:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": conn.transport.driver_type}


def _workers(census: bool) -> dict:
    # Without a census the first reply ends the wait (milliseconds while a worker is up; a
    # load balancer's probe cannot wait seconds); a census gathers replies for the whole timeout.
    timeout = settings.CELERY_WORKER_PING_TIMEOUT
    replies = celery_app.control.ping(timeout=timeout, limit=None if census else 1)
    names = sorted(name for reply in replies for name in reply)
    if not names:
        raise RuntimeError(f"no worker answered a ping within {timeout:g} s")
    return {"count": len(names), "names": names, "census": census}


def health_check(census: bool = False) -> dict:
    """Check the database, the broker and whether any worker answers a ping.

    ``status`` is ``ok`` when all three answer, ``degraded`` when only the workers are missing
    (uploads are accepted and wait in the queue), and ``down`` when the database or the broker
    fails.

    Args:
        census: wait the whole ping timeout and list every worker that answers, rather than
            stop at the first reply.
    """
    database = _timed(_database)
    broker = _timed(_broker)
    workers = (
        _timed(lambda: _workers(census))
        if broker["ok"]
        else {"ok": False, "error": "broker unreachable"}
    )
    if not (database["ok"] and broker["ok"]):
        status = "down"
    elif not workers["ok"]:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "database": database, "broker": broker, "workers": workers}
