"""The README keeps its promises: the role table equals the code's, and the two commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from apps.labs.roles import PERMISSIONS, Action, Role

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_role_table_equals_the_code():
    section = README.split("| role | read |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines()[2:] if line.startswith("|")]
    columns = [Action.READ, Action.UPLOAD_OWN, Action.WRITE, Action.MANAGE_MEMBERS]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table[Role(cells[0])] = frozenset(
            a for a, c in zip(columns, cells[1:], strict=True) if c == "yes"
        )
    assert table == PERMISSIONS


def test_the_two_commands_exist_and_are_executable():
    commands = re.findall(r"```sh\n(scripts/\w+)\n```", README)
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.is_file() and path.stat().st_mode & 0o111, command
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
