"""The embedded default database serves concurrent users: WAL, IMMEDIATE transactions, a busy
timeout."""

from __future__ import annotations

import ast
import sqlite3
import threading
import time

from django.db.utils import ConnectionHandler

from tests.test_settings_env import _settings_in_fresh_process


def test_embedded_sqlite_is_wal_immediate_with_a_busy_timeout(tmp_path):
    options = _embedded_options(tmp_path)
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] >= 10


def _embedded_options(tmp_path) -> dict:
    result = _settings_in_fresh_process(
        {"VAR_DIR": str(tmp_path)}, "settings.DATABASES['default']['OPTIONS']"
    )
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip())


def test_a_second_writer_waits_for_the_first_instead_of_failing(tmp_path, django_db_blocker):
    """On a database file of its own (whatever the suite runs on), a connection made with the
    embedded default's options finds WAL on and waits at BEGIN for another writer's lock."""
    options = _embedded_options(tmp_path)
    name = str(tmp_path / "lock.sqlite3")
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name, "OPTIONS": options}}
    )
    ours = handler["default"]
    with django_db_blocker.unblock():
        _wait_for_a_writer(ours, name)


def _wait_for_a_writer(ours, name: str) -> None:
    with ours.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("CREATE TABLE t (x int)")
    other = sqlite3.connect(name, timeout=0, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a moment
    other.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, other.execute, args=("COMMIT",)).start()
    started = time.monotonic()
    ours._start_transaction_under_autocommit()  # what transaction.atomic() runs: BEGIN IMMEDIATE
    waited = time.monotonic() - started
    with ours.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (2)")
    ours.connection.commit()
    assert waited >= 0.4  # it waited for the lock rather than failing "database is locked"
    with ours.cursor() as cursor:
        cursor.execute("SELECT x FROM t ORDER BY x")
        assert [r[0] for r in cursor.fetchall()] == [1, 2]
    ours.close()
    other.close()
