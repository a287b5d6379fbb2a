"""ml/ is the Django-free science core: importing it loads no Django, DRF or Celery."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_ml_in_a_fresh_interpreter_loads_no_django():
    import ml

    modules = ["ml"] + [
        info.name
        for info in pkgutil.walk_packages(ml.__path__, "ml.")
        if "__main__" not in info.name
    ]
    # Every sub-package's modules are imported, not only the top level's.
    for deep in ("ml.gaze.formats", "ml.gaze.detection", "ml.synthetic.writers", "ml.models"):
        assert deep in modules, (deep, modules)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rest_framework', 'celery'))\n"
        "print(len(sys.modules)); assert not bad, bad\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_ruff_bans_django_in_ml(tmp_path):
    probe = ROOT / "ml" / "_ruff_probe_test.py"
    probe.write_text("from django.db import models\nimport celery\nimport rest_framework\n")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--select", "TID251", "--no-cache", str(probe)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        probe.unlink()
    assert result.returncode == 1
    assert result.stdout.count("TID251") == 3, result.stdout
