"""``import ml.synthetic`` stays cheap: no torch, no Django, no pydicom until a DICOM is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_import_is_light():
    code = (
        "import sys, ml.synthetic, ml.synthetic.writers\n"
        "heavy = [m for m in ('torch', 'django', 'pydicom', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
