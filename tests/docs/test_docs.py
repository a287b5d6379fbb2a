"""The pages under docs/ say what the code does: every variable the settings read is on the
configuration page and nothing else is, the role table is the code's, every export format and
upload option is described, the commands and compose services they name exist, and every link
between the pages resolves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from apps.labs.roles import PERMISSIONS
from ml.gaze.formats.registry import FORMATS, upload_options
from tests.markdown import role_table

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
ENV_HELPERS = {"env_bool", "env_float", "env_int", "env_list", "env_path", "env_str"}
# Files the pages tell the reader to write, so not in the checkout.
USER_FILES = {"docker/compose.expose.yaml"}


def _text(name: str) -> str:
    return (DOCS / name).read_text()


def test_the_pages_exist():
    names = {p.name for p in PAGES}
    assert names >= {"README.md", "quick-start.md", "concepts.md", "configuration.md",
                     "deployment.md", "backups.md", "api-guide.md", "formats.md"}  # fmt: skip


def _settings_variables() -> set[str]:
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ENV_HELPERS
        and isinstance(node.args[0], ast.Constant)
    }


def test_configuration_lists_exactly_the_variables_the_settings_read():
    variables = _settings_variables()
    assert len(variables) > 60  # the AST walk found the settings' reads
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|", _text("configuration.md"), flags=re.MULTILINE)
    assert len(rows) == len(set(rows)), "a variable has two rows"
    assert set(rows) == variables, {
        "missing": sorted(variables - set(rows)),
        "not read by config/settings.py": sorted(set(rows) - variables),
    }


def test_the_role_table_equals_the_code():
    text = _text("concepts.md")
    assert role_table(text) == PERMISSIONS


def test_every_export_format_and_upload_option_is_described():
    text = _text("formats.md")
    assert [name for name in FORMATS if f"`{name}`" not in text] == []
    section = text.split("### Options", 1)[1].split("\n### ", 1)[0]
    options = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    assert set(options) == set(upload_options()) | {"image_key"}


def test_every_manage_command_named_exists():
    named = set()
    for page in PAGES:
        named |= set(re.findall(r"manage\.py (\w+)", page.read_text()))
    assert named, "the pages name no management command"
    assert sorted(named - set(get_commands())) == []


def test_every_docker_file_and_compose_service_named_exists():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = set(compose["services"])
    for page in PAGES:
        text = re.sub(r"\\\n\s*", " ", page.read_text())  # join continued shell lines
        for path in set(re.findall(r"docker/[\w.-]+", text)) - USER_FILES:
            assert (ROOT / path).is_file(), f"{page.name}: {path}"
        for line in re.findall(r"-f docker/compose\.yaml (?:up|exec|logs)[^\n`]*", text):
            words = [w.strip("`.,") for w in line.split()[3:] if not w.startswith("-")]
            verb = line.split()[2]
            named = words[:1] if verb == "exec" else words
            assert set(named) <= services, f"{page.name}: {line}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file) if file else page
        assert path.is_file(), f"{page.name}: {target}"
        if anchor:
            assert anchor in _anchors(path), f"{page.name}: {target}"
