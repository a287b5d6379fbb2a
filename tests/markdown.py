"""Reading the Markdown the project keeps true against its code (README.md, docs/)."""

from __future__ import annotations

from apps.labs.roles import Action, Role

ROLE_COLUMNS = [Action.READ, Action.UPLOAD_OWN, Action.WRITE, Action.MANAGE_MEMBERS]


def role_table(text: str) -> dict[Role, frozenset[Action]]:
    """The table that starts ``| role | read |`` in ``text``: each role's allowed actions."""
    section = text.split("| role | read |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines()[2:] if line.startswith("|")]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table[Role(cells[0])] = frozenset(
            a for a, c in zip(ROLE_COLUMNS, cells[1:], strict=True) if c == "yes"
        )
    return table
