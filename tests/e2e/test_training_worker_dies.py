"""A training worker dies mid-epoch (SIGKILL, as the OOM killer or a lost machine does): the
sweeper queues the silent job again, a new worker resumes it from its last uploaded checkpoint,
and it succeeds with one model version, without repeating the epoch that had finished."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.stack import manage, running_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Run inside the stack: a 64 x 64 snapshot of 12 small images read by two readers, built here.
SNAPSHOT = r"""
from apps.datasets import services
from apps.labs.models import Lab, User
from tests.apps.datasets.objects import lab_with_data

lab = Lab.objects.get(slug="stack-lab")
user = User.objects.get(username="stack-admin")
lab_with_data(lab, user)
snap = services.snapshot_create(lab=lab, actor=user, name="kill", enqueue=False,
                                resolution=[64, 64])
snap = services.snapshot_build(snapshot_id=snap.pk)
print("SNAPSHOT", snap.pk, snap.status, snap.error)
"""


def test_a_training_job_whose_worker_died_resumes_from_its_checkpoint(tmp_path):
    fast = {"SWEEP_RUNNING_AFTER_S": "4", "SWEEP_QUEUED_AFTER_S": "4",
            "TRAINING_BATCH_PAUSE_S": "0.5"}  # fmt: skip
    with running_stack(tmp_path / "stack", labels=("CHF",), extra_env=fast) as stack:
        out = manage(stack.env, "shell", stdin=SNAPSHOT)
        line = next(x for x in out.splitlines() if x.startswith("SNAPSHOT "))
        _, snapshot_id, status, *_ = line.split(" ")
        assert status == "ready", line
        import requests

        answer = requests.post(
            stack.url + "/api/v1/training-jobs/", headers=stack.headers(), timeout=60,
            json={"snapshot": int(snapshot_id), "preset": "quick", "base_channels": 8,
                  "batch_size": 2, "epochs": 3},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]

        def status() -> dict:
            return stack.get(f"/api/v1/training-jobs/{job_id}/status/").json()

        wait_for(
            lambda: (s := status())["status"] == "running" and s["epoch"] == 1 and s["batch"] >= 1,
            120, "epoch 2 to be under way",
        )  # fmt: skip
        stack.processes["worker"].send_signal(signal.SIGKILL)
        stack.processes["worker"].wait(timeout=10)
        assert status()["status"] == "running"  # nobody will finish it without the sweeper

        stack.start_worker()
        swept = wait_for(
            lambda: "recovered: 1" in (out := manage(stack.env, "training_sweep")) and out,
            60, "the sweeper to recover the silent job",
        )  # fmt: skip
        assert f"[{job_id}]" in swept
        final = wait_for(
            lambda: (s := status())["status"] in ("succeeded", "failed", "cancelled") and s,
            180, "the resumed job",
        )  # fmt: skip
        detail = stack.get(f"/api/v1/training-jobs/{job_id}/").json()
        assert final["status"] == "succeeded", f"{detail['error']}\n{stack.logs()}"
        # Epoch 1 finished before the crash and was not run again; 2 and 3 ran on attempt 2.
        assert [(e["epoch"], e["attempt"]) for e in detail["epochs"]] == [(1, 1), (2, 2), (3, 2)]
        assert [(a["outcome"], a["from_epoch"]) for a in detail["attempt_log"]] == [
            ("lost", 0),
            ("succeeded", 1),
        ]
        versions = stack.get(f"/api/v1/model-versions/?job={job_id}").json()
        assert versions["count"] == 1 and versions["results"][0]["id"] == final["version"]
        checkpoint = stack.get(versions["results"][0]["checkpoint_url"])
        assert checkpoint.status_code == 200 and len(checkpoint.content) > 1000
