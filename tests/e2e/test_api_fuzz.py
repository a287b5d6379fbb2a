"""A bounded schema-driven fuzz of the whole API (schemathesis) against a live server, with a lab
admin's token and a viewer's: every operation, a fixed seed, a few minutes. It fails on any 5xx,
any answer whose status code, content type or body the schema does not document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import running_stack, scratch_postgres, stack_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
# Operations that would end the run for everything after them if the fuzz hit our own objects:
# revoking the token it authenticates with, deleting the lab it works in. Their answers are
# covered by the API tests.
EXCLUDE = ["--exclude-operation-id", "tokens_destroy", "--exclude-operation-id", "labs_destroy"]
EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))


def _fuzz(url: str, token: str, report: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{url}/api/v1/schema/?format=json",
            "--header", f"Authorization: Bearer {token}", "--checks", CHECKS,
            "--max-examples", str(EXAMPLES), "--seed", "20261129", "--workers", "1",
            "--phases", "examples,coverage,fuzzing", "--no-color",
            "--request-timeout", "60", "--report", "junit", "--report-dir", str(report),
            *EXCLUDE,
        ],
        capture_output=True, text=True, timeout=1200, cwd=report.parent,  # its cache: not here
    )  # fmt: skip


def _run(stack, tmp_path: Path) -> None:
    failures = []
    for who, token in (("admin", stack.token), ("viewer", stack.viewer_token)):
        result = _fuzz(stack.url, token, tmp_path / f"report-{who}")
        print(f"--- schemathesis as {who}:\n{result.stdout[-3000:]}")
        if result.returncode != 0:
            failures.append(f"as {who}:\n{result.stdout[-12000:]}\n{result.stderr[-2000:]}")
    assert not failures, "\n".join(failures) + "\n" + stack.logs()


def test_the_api_survives_a_schema_driven_fuzz(tmp_path):
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        with (
            scratch_postgres(base) as url,
            running_stack(
                tmp_path / "stack", database_url=url, broker_url=stack_broker(), worker=False
            ) as stack,
        ):
            _run(stack, tmp_path)
    else:
        with running_stack(tmp_path / "stack", worker=False) as stack:
            _run(stack, tmp_path)
