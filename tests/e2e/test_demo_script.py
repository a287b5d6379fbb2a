"""The README's run command as a new user types it: ``scripts/demo`` on the embedded defaults
(SQLite and the filesystem broker under its own VAR_DIR) loads the demo lab, trains the demo
model and evaluates it, and the home page then shows the ``production`` model beside the centre
bias and the inter-observer ceiling. Stopped with Ctrl-C and started again, it finds the model
and trains nothing. (A smaller lab and fewer epochs than the default, to keep the test short.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import ROOT, free_port, stack_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOGIN = ("demo", "demo-gaze-2026")


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own, as a terminal's: Ctrl-C reaches the script and the server.
    return subprocess.Popen(
        ["bash", "scripts/demo"], cwd=ROOT, env=env, stdout=log.open("a"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _signed_in(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{url}/login/", timeout=10, headers={"Referer": f"{url}/login/"},
        data={"username": LOGIN[0], "password": LOGIN[1], "csrfmiddlewaretoken": token},
    )  # fmt: skip
    assert answer.ok and "Sign in" not in answer.text[:2000], answer.text[:500]
    return session


def test_the_demo_trains_evaluates_and_a_restart_trains_nothing(tmp_path):
    folder = tmp_path / "var"
    port = free_port()
    env = {**stack_env(folder, None, None), "PORT": str(port), "DEMO_IMAGES": "15",
           "DEMO_READERS": "2", "DEMO_EPOCHS": "6"}  # fmt: skip
    env.pop("DEBUG")
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"

    def up() -> bool:
        assert demo.poll() is None, log.read_text()
        try:
            return requests.get(f"{url}/login/", timeout=5).ok
        except requests.ConnectionError:
            return False

    started = time.monotonic()
    demo = _start(env, log)
    try:
        wait_for(up, 300, "scripts/demo to serve")
        printed = log.read_text()
        job = re.search(r"Demo model: training job (\d+) queued", printed)
        assert job, printed
        assert f"{url}/training/{job.group(1)}/" in printed
        session = _signed_in(url)

        def evaluated() -> str | None:
            assert demo.poll() is None, log.read_text()
            home = session.get(f"{url}/", timeout=10).text
            return home if 'id="headline-metrics"' in home else None

        home = wait_for(evaluated, 480, "the home page to show the evaluated production model")
        took = time.monotonic() - started
        print(f"scripts/demo: serving and the evaluation on the home page after {took:.0f} s")
        assert "Demo model" in home and "Centre bias" in home, home
        assert "ceiling" in home.lower()
        job_page = session.get(f"{url}/training/{job.group(1)}/", timeout=10).text
        assert "succeeded" in job_page.lower()
    finally:
        _stop(demo)
    assert demo.returncode is not None

    log.write_text("")
    again = _start(env, log)
    demo = again
    try:
        wait_for(up, 300, "scripts/demo to serve again")
        printed = log.read_text()
        assert "trained before; not training again" in printed, printed
        session = _signed_in(url)
        assert 'id="headline-metrics"' in session.get(f"{url}/", timeout=10).text
    finally:
        _stop(again)
