"""docs/backups.md's commands without Docker work: a lab's database and files are backed up with
the page's ``pg_dump`` and ``rsync`` block, restored with its ``pg_restore`` block into a new,
empty PostgreSQL database and an empty media folder, and the page's check finds every file the
restored rows name, and names a file that is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.guide import fences
from tests.e2e.stack import manage, postgres_server, scratch_postgres, stack_env

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "backups.md"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Run inside the platform (manage.py shell): a lab with a DICOM and a PNG image, stored through
# the imaging service like an upload.
DATA = r"""
import io, pathlib, tempfile
from apps.imaging import services as imaging
from apps.labs.models import Lab, Membership, User
from ml.synthetic import make_phantom, write_dicom, write_png

user = User.objects.create_user("backup-admin")
lab = Lab.objects.create(name="Backup Lab", slug="backup-lab")
Membership.objects.create(lab=lab, user=user, role="admin")
tmp = pathlib.Path(tempfile.mkdtemp())
for i, label in enumerate(("CHF", "Normal")):
    phantom = make_phantom(label, seed=i + 1, height=200, width=160)
    if i:
        path = write_png(phantom, tmp / "b.png")
    else:
        path = tmp / "a.dcm"
        write_dicom(phantom, path, seed=1)
    data = path.read_bytes()
    result = imaging.image_ingest(lab=lab, uploaded_by=user, file=io.BytesIO(data),
                                  filename=path.name, size=len(data))
    assert result.image is not None, result.message
print("IMAGES", lab.images.count())
"""


def _blocks() -> list[str]:
    section = PAGE.read_text().split("## Without Docker", 1)[1].split("\n## ", 1)[0]
    return [code for lang, code in fences(section) if lang == "sh"]


def _bash(script: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _env(folder: Path, database_url: str, backup: Path) -> dict[str, str]:
    env = stack_env(folder, database_url, None)
    venv_bin = str(Path(sys.executable).parent)  # the page's `python` is the platform's
    env.update(
        MEDIA_ROOT=str(folder / "media"), BACKUP=str(backup),
        PATH=venv_bin + os.pathsep + env.get("PATH", ""),
    )  # fmt: skip
    return env


def test_the_page_has_the_three_blocks():
    backup, restore, check = _blocks()
    assert "pg_dump" in backup and "rsync" in backup
    assert "pg_restore" in restore and "rsync" in restore
    assert "manage.py shell" in check


def test_backup_and_restore_without_docker(tmp_path):
    missing = [
        tool for tool in ("bash", "pg_dump", "pg_restore", "rsync") if not shutil.which(tool)
    ]
    if missing:  # scripts/test installs them
        pytest.fail(f"the backup guide needs {', '.join(missing)} (Debian's packages)")
    backup_block, restore_block, check_block = _blocks()
    backup = tmp_path / "backup"
    base = postgres_server()
    with scratch_postgres(base) as first, scratch_postgres(base) as second:
        old = _env(tmp_path / "old", first, backup)
        manage(old, "migrate", "--noinput")
        assert "IMAGES 2" in manage(old, "shell", stdin=DATA)
        stored = [p for p in (tmp_path / "old" / "media").rglob("*") if p.is_file()]
        assert len(stored) >= 6  # each image's DICOM or pixels, preview and thumbnail

        _bash(backup_block, old)
        assert len(list(backup.glob("cxrgaze-*.dump"))) == 1

        new = _env(tmp_path / "new", second, backup)
        _bash(restore_block, new)
        out = _bash(check_block, new)
        found = re.search(r"^(\d+) files named, (\d+) missing$", out, flags=re.MULTILINE)
        assert found, out
        assert int(found[1]) >= 6 and found[2] == "0", out

        lost = next(p for p in (tmp_path / "new" / "media").rglob("*.png") if p.is_file())
        lost.unlink()
        out = _bash(check_block, new)
        assert re.search(r"^\d+ files named, 1 missing$", out, flags=re.MULTILINE), out
        assert str(lost.relative_to(tmp_path / "new" / "media")) in out.splitlines()
