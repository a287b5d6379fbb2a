"""The API load benchmark (``apps.core.loadbench``) at a tiny size, its clean-up, and the
``X-Query-Count`` middleware it reads the servers' query counts from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from apps.core.loadbench_lab import Lab, endpoints
from apps.labs.services import api_token_create

MIDDLEWARE = "apps.core.querycount.QueryCountMiddleware"
TINY = ["--images", "12", "--readers", "2", "--clients", "4", "--workers", "2", "--requests",
        "3", "--baseline", "2", "--maps", "4", "--versions", "1", "--eval-rows", "10",
        "--jobs", "2"]  # fmt: skip


# --- The middleware -------------------------------------------------------------------------
def _get(personas, path: str):
    _token, key = api_token_create(user=personas.researcher_a, name="t")
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return response, len(queries.captured_queries)


def test_off_by_default_and_then_no_header(personas):
    assert not settings.QUERY_COUNT_HEADER
    assert MIDDLEWARE not in settings.MIDDLEWARE
    response, _n = _get(personas, "/api/v1/readers/")
    assert "X-Query-Count" not in response


@pytest.mark.parametrize("path", ["/api/v1/readers/", "/api/v1/me/", "/api/v1/memberships/"])
def test_on_the_header_is_the_number_of_queries(personas, path):
    with override_settings(MIDDLEWARE=[MIDDLEWARE, *settings.MIDDLEWARE]):
        response, n = _get(personas, path)
    assert n > 0
    assert response["X-Query-Count"] == str(n)
    assert "X-Query-Count-Streaming" not in response


def _middleware_in_fresh_process(value: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "QUERY_COUNT_HEADER"}
    if value is not None:
        env["QUERY_COUNT_HEADER"] = value
    code = "import django; django.setup(); from django.conf import settings; " \
           "import json; print(json.dumps(settings.MIDDLEWARE))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env,
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_setting_installs_it_first_only_when_true():
    assert _middleware_in_fresh_process("true")[0] == MIDDLEWARE
    assert MIDDLEWARE not in _middleware_in_fresh_process("false")
    assert MIDDLEWARE not in _middleware_in_fresh_process(None)


# --- The benchmark --------------------------------------------------------------------------
def _server_url() -> str:
    """The PostgreSQL server the benchmark makes its scratch database on: the suite's, or the
    local default where the suite runs on SQLite (``postgres_server``: skips only where no server
    answers, and fails under CI)."""
    from tests.e2e.stack import postgres_server

    return postgres_server().rsplit("/", 1)[0]


def _scratch_databases(server: str, pid: int) -> list[str]:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"loadbench_{pid}_%"]
        ).fetchall()
    return [name for (name,) in rows]


def _bench(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "apps.core.loadbench", "--database-url", _server_url(), *args],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_tiny_run_reports_every_endpoint_and_cleans_up(tmp_path):
    report_file = tmp_path / "report.json"
    bench = _bench(tmp_path, *TINY, "--rounds", "1", "--sweep", "2", "--json", str(report_file))
    output, _ = bench.communicate(timeout=600)
    assert bench.returncode == 0, output[-4000:]
    report = json.loads(report_file.read_text())

    names = [name for name, _k, _p in endpoints(Lab(1, "", *[[1]] * 11, counts={}))]
    rows = report["rounds"][0]["endpoints"]
    assert list(rows) == names and list(report["baseline"]) == names
    kinds = {row["kind"] for row in rows.values()}
    assert kinds == {"list", "detail", "file", "upload"}
    for name, row in rows.items():
        assert row["count"] == 3, name
        assert row["errors"] == {} and report["baseline"][name]["errors"] == {}, (name, row)
        assert row["queries"] is not None and row["queries"] > 0, name
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], name
        assert report["baseline"][name]["web_cpu_ms"] >= 0, name
    assert rows["fixations.csv"]["streaming"]
    # Every list's queries stay the same from a page of 1 row to a full page: no N+1.
    growth = report["page_growth"]
    assert set(growth) == {n for n, row in rows.items() if row["kind"] == "list"}
    assert [n for n, g in growth.items() if g["grows"] or g["status"] != "200"] == []
    assert report["cores"] >= 1 and report["cpu"] and report["clients"] == 4
    assert len(report["loadavg_start"]) == 3 and report["capacity"]["max_rps"] > 0
    assert isinstance(report["target_met"], bool)
    assert report["rounds"][0]["cores_busy"] > 0 and len(report["rounds"]) == 1
    assert list(report["sweep"]) == ["2"] and list(report["sweep"]["2"]["endpoints"]) == names
    assert "with 2 clients:" in output
    assert "TARGET lists and object reads p95 < 150 ms" in output
    # Clean-up: the scratch database and the temporary folder are gone.
    assert _scratch_databases(_server_url(), bench.pid) == []
    assert not list(tmp_path.glob("loadbench-*"))


@pytest.mark.slow
def test_interrupted_run_stops_gunicorn_and_drops_everything(tmp_path):
    bench = _bench(tmp_path, *TINY, "--requests", "200")
    deadline = time.monotonic() + 300
    pid_files: list[Path] = []
    while not pid_files and time.monotonic() < deadline and bench.poll() is None:
        time.sleep(0.5)
        pid_files = [p for p in tmp_path.glob("loadbench-*/gunicorn.pid") if p.read_text()]
    assert pid_files, "gunicorn never started"
    time.sleep(1)
    gunicorn = int(pid_files[0].read_text())
    assert _scratch_databases(_server_url(), bench.pid)
    bench.send_signal(signal.SIGINT)
    output, _ = bench.communicate(timeout=120)
    assert bench.returncode != 0, output[-2000:]
    assert not Path(f"/proc/{gunicorn}").exists()
    assert _scratch_databases(_server_url(), bench.pid) == []
    assert not list(tmp_path.glob("loadbench-*"))
