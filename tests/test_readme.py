"""The README keeps its promises: the role table equals the code's, and the two commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from apps.labs.roles import PERMISSIONS
from tests.markdown import role_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_role_table_equals_the_code():
    assert role_table(README) == PERMISSIONS


def test_the_two_commands_exist_and_are_executable():
    commands = re.findall(r"```sh\n(scripts/\w+)\n```", README)
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.is_file() and path.stat().st_mode & 0o111, command
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
