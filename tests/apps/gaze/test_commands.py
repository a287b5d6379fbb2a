"""import_egd_cxr and import_reflacx on the synthetic writers' output."""

from __future__ import annotations

import io

from django.core.management import call_command

from apps.gaze.models import Fixation, Reading, Recording
from ml.synthetic.writers import write_egd_cxr, write_reflacx
from tests.apps.gaze.conftest import simulated


def test_import_egd_cxr_eye_gaze(personas, images, phantoms, tmp_path):
    write_egd_cxr(simulated(phantoms, 60), tmp_path / "egd", calibration_every=2)
    out = io.StringIO()
    call_command("import_egd_cxr", root=str(tmp_path / "egd"), lab="lab-a", source="eye_gaze",
                 stdout=out)  # fmt: skip
    assert "eye_gaze.csv: done; 3 readings, 0 unmatched" in out.getvalue()
    assert Reading.objects.filter(lab=personas.lab_a).count() == 3
    # Running it again stores nothing twice.
    call_command("import_egd_cxr", root=str(tmp_path / "egd"), lab="lab-a", source="eye_gaze",
                 stdout=io.StringIO())  # fmt: skip
    assert Recording.objects.count() == 1 and Reading.objects.count() == 3


def test_import_reflacx(personas, images, phantoms, tmp_path):
    write_reflacx(simulated(phantoms[:2], 1000, zoom=True), tmp_path / "rx", phase=3, seed=1)
    out = io.StringIO()
    call_command("import_reflacx", root=str(tmp_path / "rx"), lab="lab-a", stdout=out)
    assert "2 done" in out.getvalue()
    assert Reading.objects.count() == 2 and Fixation.objects.exists()
