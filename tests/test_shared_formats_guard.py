"""Tests that read ../shared/formats skip on a developer's machine without it, and fail under CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import shared_formats

ROOT = Path(__file__).resolve().parent.parent


def test_require_fails_under_ci_and_skips_elsewhere(tmp_path, monkeypatch) -> None:
    absent = tmp_path / "nothing-here"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the real-export tests"):
        shared_formats.require(absent)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="absent"):
        shared_formats.require(absent)
    assert shared_formats.require(tmp_path) == tmp_path


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_a_marked_test_fails_under_ci_when_the_exports_are_absent(tmp_path, ci, outcome) -> None:
    probe = ROOT / "tests" / "_probe_shared_formats_test.py"
    probe.write_text(
        "from pathlib import Path\n"
        "from tests.shared_formats import needs\n\n"
        f"@needs(Path({str(tmp_path / 'absent')!r}))\n"
        "def test_reads_real_exports():\n"
        "    raise AssertionError('must not run')\n"
    )
    try:
        env = {"CI": ci, "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings"}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        probe.unlink()
    assert outcome in result.stdout, result.stdout + result.stderr
    assert (result.returncode != 0) == bool(ci)  # under CI the run fails
