"""A whole platform in processes of its own: a fresh database, the web server and a Celery worker,
configured only through the environment, as ``scripts/demo`` or a deployment starts them.

Tests that must see what users see (concurrent clients, a worker that dies, the embedded defaults
while the suite itself runs on PostgreSQL) start one with :func:`running_stack`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]

# Run inside the stack (``manage.py shell``): a lab, an admin with an API token, a reader and a
# session, and small phantom images; prints what the clients need as one JSON line.
SETUP = r"""
import io, json
from apps.gaze import services as gaze
from apps.imaging import services as imaging
from apps.labs.models import Lab, Membership, User
from apps.labs.services import api_token_create
from ml.synthetic import make_phantom
from ml.synthetic.dicom import write_png
import tempfile, pathlib

user = User.objects.create_user("stack-admin", password="stack-pass-2026")
lab = Lab.objects.create(name="Stack Lab", slug="stack-lab")
Membership.objects.create(lab=lab, user=user, role="admin")
_, key = api_token_create(user=user, name="stack")
viewer = User.objects.create_user("stack-viewer", password="stack-pass-2026")
Membership.objects.create(lab=lab, user=viewer, role="viewer")
_, viewer_key = api_token_create(user=viewer, name="stack")
tmp = pathlib.Path(tempfile.mkdtemp())
keys = []
for i, label in enumerate(LABELS):
    p = make_phantom(label, seed=i + 1, height=300, width=250)
    path = write_png(p, tmp / f"img{i}.png")
    data = path.read_bytes()
    result = imaging.image_ingest(lab=lab, uploaded_by=user, file=io.BytesIO(data),
                                  filename=path.name, size=len(data), key=f"img-{i}")
    keys.append(result.image.key)
sessions = []
for r in range(N_SESSIONS):
    reader = gaze.reader_create(lab=lab, code=f"R{r + 1}")
    session = gaze.reading_session_create(lab=lab, reader=reader, created_by=user,
                                          name=f"S{r + 1}")
    sessions.append(session.pk)
print("STACK " + json.dumps({"token": key, "viewer_token": viewer_key, "lab": lab.pk,
                             "sessions": sessions, "keys": keys}))
"""


def worker_command(queues: str, hostname: str) -> list[str]:
    """A Celery worker consuming ``queues`` (comma-separated), one task at a time."""
    return [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
            "--pool", "solo", "--hostname", hostname, "--without-mingle", "--without-gossip",
            "-l", "info"]  # fmt: skip


@contextlib.contextmanager
def celery_worker(queue: str, log_path: Path, env: dict[str, str]) -> Iterator[str]:
    """A worker process consuming ``queue`` only (so no other worker takes its tasks), with
    ``env`` (the test's database and MEDIA_ROOT); yields its hostname once it answers a ping."""
    from config.celery import app as celery_app

    hostname = f"{queue}@localhost"
    log = log_path.open("w")
    process = subprocess.Popen(
        worker_command(queue, hostname), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        wait_for(
            lambda: (
                process.poll() is not None
                or celery_app.control.ping(destination=[hostname], timeout=1.0)
            ),
            90,
            "the worker to answer a ping",
        )
        assert process.poll() is None, log_path.read_text()
        yield hostname
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        print(log_path.read_text()[-3000:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    folder: Path
    token: str = ""
    viewer_token: str = ""
    lab: int = 0
    sessions: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers(), timeout=60, **kwargs)

    def logs(self) -> str:
        out = []
        for name in ("web", "worker"):
            log = self.folder / f"{name}.log"
            if log.exists():
                out.append(f"--- {name}.log (tail)\n{log.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)

    def start_worker(
        self, queues: str = "default,gpu", env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """A worker for ``queues`` with the stack's environment, updated by ``env`` (a worker on
        another machine: its own cache folder, say)."""
        log = (self.folder / "worker.log").open("a")
        hostname = f"stack-{uuid.uuid4().hex[:8]}@localhost"
        process = subprocess.Popen(
            worker_command(queues, hostname), cwd=ROOT, env={**self.env, **(env or {})},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes["worker"] = process
        return process


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def stack_broker() -> str | None:
    """The broker of a stack: where the suite runs on Redis, a Redis database of the stacks' own
    (14, flushed when a stack stops), so that no task of the suite's reaches a stack's worker;
    else the stack's own filesystem broker."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    return broker.rsplit("/", 1)[0] + "/14" if broker.startswith("redis") else None


def stack_env(folder: Path, database_url: str | None, broker_url: str | None) -> dict[str, str]:
    """The environment of a stack under ``folder``: the embedded defaults (SQLite and the
    filesystem broker under it) unless a database or broker URL is given (a Redis broker is
    the stack's cache too)."""
    drop = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "CI",
            "CACHE_URL", "RESPONSE_CACHE_URL")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(VAR_DIR=str(folder), DJANGO_SETTINGS_MODULE="config.settings", DEBUG="true")
    if database_url:
        env["DATABASE_URL"] = database_url
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
        if broker_url.startswith("redis"):
            # As docker/compose.yaml: Django's cache and the API's answer cache in Redis too, so
            # that a stack's pages poll answers its worker's writes must make stale.
            env["CACHE_URL"] = broker_url
    return env


@contextlib.contextmanager
def running_stack(
    folder: Path,
    *,
    database_url: str | None = None,
    broker_url: str | None = None,
    labels: tuple[str, ...] = ("CHF", "Pneumonia", "Normal"),
    sessions: int = 1,
    worker: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Migrate a fresh database, load a lab, start the web server (Django's, threaded, as the demo
    runs it) and, unless ``worker`` is False, one worker for both queues."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**stack_env(folder, database_url, broker_url), **(extra_env or {})}
    manage(env, "migrate", "--noinput")
    setup = f"LABELS = {labels!r}\nN_SESSIONS = {sessions}\n" + SETUP
    out = manage(env, "shell", stdin=setup)
    info = json.loads(next(line[6:] for line in out.splitlines() if line.startswith("STACK ")))
    port = free_port()
    stack = Stack(url=f"http://127.0.0.1:{port}", env=env, folder=folder, **info)
    web_log = (folder / "web.log").open("a")
    stack.processes["web"] = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=web_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def up() -> bool:
            try:
                return requests.get(stack.url + "/login/", timeout=5).ok
            except requests.ConnectionError:
                assert stack.processes["web"].poll() is None, stack.logs()
                return False

        wait_for(up, 60, "the web server")
        if worker:
            stack.start_worker()
        yield stack
    finally:
        for process in stack.processes.values():
            process.terminate()
        for process in stack.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        web_log.close()
        if broker_url and broker_url.startswith("redis"):
            import redis

            redis.Redis.from_url(broker_url).flushdb()  # the stack's own database: no leftovers


def postgres_server() -> str:
    """The URL of the suite's PostgreSQL server (``DATABASE_URL`` or the local default); skips
    where none answers, except under CI, where that fails."""
    import psycopg
    import pytest

    from tests.shared_formats import in_ci

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except Exception as exc:
        if in_ci():
            raise
        pytest.skip(f"no PostgreSQL server here: {exc}")
    return base


@contextlib.contextmanager
def scratch_postgres(base_url: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL server of ``base_url``, dropped afterwards."""
    import psycopg

    name = f"stack_{uuid.uuid4().hex[:10]}"
    admin = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
