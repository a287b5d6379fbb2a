"""A worker dies mid-parse (SIGKILL, as the OOM killer or a lost machine does): the sweeper finds
the silent parse, queues it again, and a new worker finishes it."""

from __future__ import annotations

import signal

import pytest
import requests

from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_eyelink_asc
from tests.e2e.stack import manage, running_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ("CHF", "Pneumonia", "Normal") * 4


def test_a_parse_whose_worker_died_is_recovered(tmp_path):
    # A long recording (12 readings at 2000 Hz), so that the parse is still running when the
    # worker is killed.
    phantoms = [
        make_phantom(label, seed=i + 1, height=300, width=250) for i, label in enumerate(LABELS)
    ]
    reader = Radiologist(name="R1", n_fixations=60)
    readings = [
        simulate_reading(p, reader, rate_hz=2000, seed=i, image_key=f"img-{i}")
        for i, p in enumerate(phantoms)
    ]
    export = write_eyelink_asc(readings, tmp_path / "long.asc")["asc"]
    fast = {"SWEEP_RUNNING_AFTER_S": "4", "SWEEP_QUEUED_AFTER_S": "4"}
    with running_stack(tmp_path / "stack", labels=LABELS, extra_env=fast) as stack:
        with export.open("rb") as fh:
            answer = requests.post(
                stack.url + "/api/v1/recordings/", headers=stack.headers(),
                data={"session": stack.sessions[0]}, files={"files": (export.name, fh)},
                timeout=120,
            )  # fmt: skip
        assert answer.status_code == 201, answer.text
        rid = answer.json()[0]["id"]

        def status() -> dict:
            return stack.get(f"/api/v1/recordings/{rid}/status/").json()

        wait_for(lambda: status()["status"] == "parsing", 60, "the parse to start")
        stack.processes["worker"].send_signal(signal.SIGKILL)
        stack.processes["worker"].wait(timeout=10)
        assert status()["status"] == "parsing"  # nobody will finish it: stuck, as before

        stack.start_worker()
        swept = wait_for(
            lambda: "recovered: 1" in (out := manage(stack.env, "recordings_sweep")) and out,
            60, "the sweeper to recover the silent parse",
        )  # fmt: skip
        assert f"[{rid}]" in swept
        final = wait_for(
            lambda: (s := status())["status"] in ("done", "failed") and s, 180, "the new parse"
        )
        assert final["status"] == "done", f"{final}\n{stack.logs()}"
        readings_api = stack.get(f"/api/v1/readings/?recording={rid}").json()
        assert readings_api["count"] == len(LABELS)
