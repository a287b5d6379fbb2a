"""Eight readers upload at once, as a small lab does: on the embedded defaults (SQLite and the
filesystem broker, whatever the suite runs on) and on PostgreSQL with the suite's broker. No
answer is a 5xx, and every recording ends ``done``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_eyelink_asc
from tests.e2e.stack import (
    postgres_server,
    running_stack,
    scratch_postgres,
    stack_broker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ("CHF", "Pneumonia", "Normal")
CLIENTS = 8


def _exports(folder: Path, keys: list[str]) -> list[Path]:
    """Eight different EyeLink exports, each one reader's reading of every image."""
    phantoms = [
        make_phantom(label, seed=i + 1, height=300, width=250) for i, label in enumerate(LABELS)
    ]
    paths = []
    for c in range(CLIENTS):
        reader = Radiologist(name=f"R{c}", n_fixations=8)
        readings = [
            simulate_reading(p, reader, rate_hz=250, seed=100 * c + i, image_key=keys[i])
            for i, p in enumerate(phantoms)
        ]
        paths.append(write_eyelink_asc(readings, folder / f"reader{c}.asc", seed=c)["asc"])
    return paths


def _upload_at_once(stack, exports: list[Path]) -> list[requests.Response]:
    barrier = threading.Barrier(len(exports))
    answers: list[requests.Response | BaseException] = [None] * len(exports)  # type: ignore[list-item]

    def client(i: int) -> None:
        session = stack.sessions[i % len(stack.sessions)]
        with exports[i].open("rb") as fh:
            barrier.wait()
            try:
                answers[i] = requests.post(
                    stack.url + "/api/v1/recordings/", headers=stack.headers(),
                    data={"session": session}, files={"files": (exports[i].name, fh)}, timeout=120,
                )  # fmt: skip
            except BaseException as exc:
                answers[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(exports))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers  # type: ignore[return-value]


def _check(stack, tmp_path: Path) -> None:
    exports = _exports(tmp_path, stack.keys)
    answers = _upload_at_once(stack, exports)
    bad = [(i, a if isinstance(a, BaseException) else (a.status_code, a.text[:300]))
           for i, a in enumerate(answers)
           if isinstance(a, BaseException) or a.status_code != 201]  # fmt: skip
    assert not bad, f"{bad}\n{stack.logs()}"
    ids = [a.json()[0]["id"] for a in answers]
    assert len(set(ids)) == CLIENTS

    def statuses():
        return {rid: stack.get(f"/api/v1/recordings/{rid}/status/").json()["status"] for rid in ids}

    final = wait_for(
        lambda: (s := statuses()) and all(v in ("done", "failed") for v in s.values()) and s,
        240, "every recording to be parsed",
    )  # fmt: skip
    assert set(final.values()) == {"done"}, f"{final}\n{stack.logs()}"
    readings = stack.get("/api/v1/readings/?page_size=100").json()
    assert readings["count"] == CLIENTS * len(LABELS)


def test_eight_concurrent_uploads_on_the_embedded_defaults(tmp_path):
    with running_stack(tmp_path / "stack", labels=LABELS, sessions=CLIENTS) as stack:
        assert stack.env.get("DATABASE_URL") is None  # SQLite and the filesystem broker
        _check(stack, tmp_path)


def test_eight_concurrent_uploads_on_postgresql(tmp_path):
    broker = stack_broker()
    with (
        scratch_postgres(postgres_server()) as url,
        running_stack(
            tmp_path / "stack", database_url=url, broker_url=broker, labels=LABELS, sessions=CLIENTS
        ) as stack,
    ):
        _check(stack, tmp_path)
