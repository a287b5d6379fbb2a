"""docs/api-guide.md works as written: every ``sh`` block, run in order in one bash with
``-euo pipefail``, and every ``python`` block, run in order in one Python process, against a live
stack (a fresh PostgreSQL database where one answers, the web server and a real Celery worker,
``tests/e2e/stack.py``), each in a lab of its own, from the input files the guide names. A block
that fails fails the test; a block the test would not run (a fence of another language) is a
defect too."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image as PILImage

from apps.evaluation.api import CSV_COLUMNS
from tests.docs import guide
from tests.e2e.stack import Stack, postgres_server, running_stack, scratch_postgres, stack_broker

# One block of each language per step: set up, token, images, reader and session, recording,
# snapshot, training, the model with its evaluation and maps.
EXPECTED_BLOCKS = 8
# The final status each wait_for prints: upload batch, recording, snapshot, job, evaluation.
STATUSES = ["done", "done", "ready", "succeeded", "succeeded"]
ALL_STATUSES = {"queued", "running", "parsing", "building", "done", "ready", "failed",
                "succeeded", "cancelled"}  # fmt: skip
OUTPUTS = ("model.pt", "evaluation-images.csv", "map.npz", "saliency.png")
SNAPSHOT_SIDE = 64  # the guide's snapshot resolution, 64 x 64
SALIENCY_SIZE = (256, 320)  # width, height asked of the saliency map
RUN_TIMEOUT_S = 600


def test_every_block_is_run_by_the_test():
    found = guide.fences(guide.GUIDE.read_text())
    languages = [lang for lang, _ in found]
    assert set(languages) <= set(guide.LANGUAGES), f"blocks the test would not run: {languages}"
    assert languages.count("sh") == languages.count("python") == EXPECTED_BLOCKS, languages


def test_the_blocks_parse():
    program = "\n\n".join(guide.blocks("python"))
    compile(program, "api-guide.md (python blocks)", "exec")
    script = "\n\n".join(guide.blocks("sh"))
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def _tools() -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:  # scripts/test installs them
        pytest.fail(f"the guide's sh blocks need {', '.join(missing)} (Debian's packages)")


def _env(stack: Stack, lab_slug: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        CXR_URL=stack.url, CXR_TOKEN=stack.token, CXR_LAB=lab_slug,
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
    )  # fmt: skip
    return env


def _run(command: list[str], folder: Path, stack: Stack, lab_slug: str) -> str:
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, cwd=folder, env=_env(stack, lab_slug), capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out: {exc.stdout}\n{exc.stderr}\n{stack.logs()}") from None
    print(f"{command[0]}: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
        f"{stack.logs()}"
    )
    return result.stdout


def _copy_inputs(inputs: Path, folder: Path) -> Path:
    folder.mkdir()
    for path in inputs.iterdir():
        shutil.copy(path, folder / path.name)
    return folder


def _check_files(folder: Path, version: dict) -> None:
    for name in OUTPUTS:
        assert (folder / name).is_file(), f"{name} was not written"
    digest = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    assert digest == version["checkpoint_sha256"]

    rows = list(csv.reader(io.StringIO((folder / "evaluation-images.csv").read_text())))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 1 + guide.N_TEST
    assert {row[0] for row in rows[1:]} <= set(guide.keys())

    with zipfile.ZipFile(folder / "map.npz") as zf:
        assert zf.namelist() == ["map.npy"]
    model_map = np.load(folder / "map.npz")["map"]
    assert model_map.shape == (SNAPSHOT_SIDE, SNAPSHOT_SIDE)
    assert model_map.dtype == np.float16 and float(model_map.max()) == 1.0

    png = (folder / "saliency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with PILImage.open(folder / "saliency.png") as image:
        assert image.size == SALIENCY_SIZE


def _check_lab(stack: Stack, lab_slug: str) -> dict:
    """What the walk-through left in the lab, through the API; returns its model version."""
    [lab] = stack.get(f"/api/v1/labs/?slug={lab_slug}").json()["results"]
    q = f"?lab={lab['id']}"
    images = stack.get(f"/api/v1/images/{q}&page_size=500").json()["results"]
    labelled = {i["key"]: i["label"] for i in images if i["label"]}
    assert labelled == {k: guide.CLASSES[i % 3] for i, k in enumerate(guide.keys())}
    [recording] = stack.get(f"/api/v1/recordings/{q}").json()["results"]
    assert recording["status"] == "done" and recording["format"] == "eyelink_asc"
    assert recording["reading_count"] == guide.N_IMAGES and recording["unmatched_stimuli"] == []
    [snapshot] = stack.get(f"/api/v1/snapshots/{q}").json()["results"]
    assert snapshot["status"] == "ready"
    assert snapshot["choices"]["resolution"] == [SNAPSHOT_SIDE, SNAPSHOT_SIDE]
    [job] = stack.get(f"/api/v1/training-jobs/{q}").json()["results"]
    assert job["status"] == "succeeded" and job["preset"] == "quick"
    [version] = stack.get(f"/api/v1/model-versions/{q}").json()["results"]
    assert version["aliases"] == ["production"] and version["job"] == job["id"]
    [evaluation] = stack.get(f"/api/v1/evaluations/{q}").json()["results"]
    assert evaluation["status"] == "succeeded" and evaluation["total"] == guide.N_TEST
    return version


def _statuses(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip() in ALL_STATUSES]


def _revoked(stack: Stack) -> list[dict]:
    tokens = stack.get("/api/v1/tokens/?page_size=500").json()["results"]
    return [t for t in tokens if t["name"] == "nightly import" and t["revoked_at"]]


@pytest.mark.integration
@pytest.mark.slow
def test_the_guide_runs_in_curl_and_in_python(tmp_path):
    _tools()
    inputs = tmp_path / "inputs"
    made = guide.write_inputs(inputs)
    assert sorted(made) == ["images.zip", "labels.csv", "reading.asc"]
    sh_script = "\n\n".join(guide.blocks("sh"))
    py_program = "\n\n".join(guide.blocks("python"))
    assert sh_script and py_program
    broker = stack_broker()
    with (
        scratch_postgres(postgres_server()) as database,
        running_stack(tmp_path / "stack", database_url=database, broker_url=broker) as stack,
    ):
        # curl, in the stack's lab.
        sh_dir = _copy_inputs(inputs, tmp_path / "sh")
        out = _run(["bash", "-euo", "pipefail", "-c", sh_script], sh_dir, stack, "stack-lab")
        assert _statuses(out) == STATUSES, out
        assert f"lab {stack.lab}" in out.splitlines()
        version = _check_lab(stack, "stack-lab")
        _check_files(sh_dir, version)
        assert len(_revoked(stack)) == 1

        # Python, in a new lab of the same admin, so that it starts from nothing as well.
        answer = requests.post(
            stack.url + "/api/v1/labs/", headers=stack.headers(), timeout=60,
            json={"name": "Python Lab", "slug": "python-lab"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        py_dir = _copy_inputs(inputs, tmp_path / "python")
        (py_dir / "api_guide.py").write_text(py_program)
        out = _run([sys.executable, "api_guide.py"], py_dir, stack, "python-lab")
        assert _statuses(out) == STATUSES, out
        assert f"lab {answer.json()['id']}" in out.splitlines()
        version = _check_lab(stack, "python-lab")
        _check_files(py_dir, version)
        assert len(_revoked(stack)) == 2
