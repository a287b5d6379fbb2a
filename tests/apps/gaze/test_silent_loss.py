"""No silent loss at the app level: an EGD-CXR fixations.csv with a NUL byte in one DICOM_ID cell
is uploaded (``services.recording_upload``) and parsed (``recording_parse``): the recording says
which line lost its fixation and why, and the stored counts are what the analysis gave. A guard in
the store compares, for every format, the fixations each reading has in the database with the
analysis's count, and warns when they differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.gaze import services
from apps.gaze.models import Fixation, Reading, Recording
from apps.gaze.services import parse
from ml.gaze.formats import _csv
from ml.synthetic.writers import write_egd_cxr, write_eyelink_asc
from tests.apps.gaze.conftest import simulated


@pytest.fixture(params=["fast", "careful"])
def path_kind(request, monkeypatch) -> str:
    """The upload is parsed on the fast CSV path, then on the csv-module path."""
    monkeypatch.setattr(_csv, "FAST_CSV", request.param == "fast")
    return request.param


def upload(personas, session, *paths: Path) -> Recording:
    [rec] = services.recording_upload(
        session=session,
        uploaded_by=personas.researcher_a,
        uploads=[services.tmp_upload(p) for p in paths],
        enqueue=False,
    )
    return rec


def with_nul(src: Path, dst: Path) -> tuple[Path, int, str]:
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    k = len(lines) - 4
    cells = lines[k].split(",")
    assert "cafe0000" in cells[2]
    cells[2] = cells[2][:4] + "\x00" + cells[2][4:]
    lines[k] = ",".join(cells)
    dst.write_text("".join(lines), encoding="utf-8")
    return dst, k + 1, cells[2]


def test_nul_in_a_dicom_id_is_reported_with_its_line(
    personas, session, images, phantoms, tmp_path, path_kind
):
    paths = write_egd_cxr(simulated(phantoms, 60), tmp_path / "egd", calibration_every=2)
    bad, line, damaged = with_nul(paths["fixations"], tmp_path / "fixations.csv")
    rows = len(bad.read_text(encoding="utf-8").splitlines()) - 1
    rec = upload(personas, session, bad, paths["master_sheet"])
    assert rec.format == "egd_cxr"
    rec = services.recording_parse(recording_id=rec.pk)
    rec.refresh_from_db()
    assert rec.status == "done", rec.errors
    shown = damaged.replace("\x00", "\\x00")
    # Reported: as an unmatched stimulus, with its line in the warnings and the quality report.
    assert rec.unmatched_stimuli == [shown]
    assert any(f"line {line}" in w and shown in w for w in rec.warnings)
    q = rec.quality
    [lost] = [d for d in q["dropped"]["stimuli"] if d["reason"] == "matched no image"]
    assert lost == {"stimulus": shown, "line": line, "fixations": 1, "reason": "matched no image"}
    # Stored + dropped = parsed, and stored = what the analysis gave.
    stored = Fixation.objects.filter(reading__recording=rec).count()
    assert q["fixations_parsed"] == rows
    assert stored == q["fixations_kept"] == q["fixations_stored"]
    assert stored + q["dropped"]["count"] == rows
    assert q["dropped"]["by_reason"]["matched no image"] == 1
    assert Reading.objects.filter(recording=rec).count() == 3
    for reading in Reading.objects.filter(recording=rec):
        assert reading.fixations.count() == reading.fixation_count


def test_stored_counts_are_checked_for_every_format(
    personas, session, images, phantoms, tmp_path, monkeypatch
):
    """A row lost between the analysis and the database (here: dropped on purpose on its way to
    the database) makes the recording say so, naming the image and both counts."""
    paths = write_eyelink_asc(simulated(phantoms[:2], 1000, n_fix=6), tmp_path / "a.asc")
    original = parse._fixation_rows

    def leaky(lab_id, readings):
        for n, row in enumerate(original(lab_id, readings)):
            if n != 2:
                yield row

    monkeypatch.setattr(parse, "_fixation_rows", leaky)
    rec = upload(personas, session, paths["asc"])
    services.recording_parse(recording_id=rec.pk)
    rec.refresh_from_db()
    assert rec.status == "done"
    first = Reading.objects.filter(recording=rec).order_by("pk").first()
    want = first.fixation_count
    [warning] = [w for w in rec.warnings if "stored where the analysis gave" in w]
    assert warning == (
        f"{first.image.key}: {want - 1} fixation(s) stored where the analysis gave {want} "
        "(a difference of -1)"
    )
    assert rec.quality["fixations_stored"] == rec.quality["fixations_kept"] - 1


def test_nothing_to_say_when_nothing_is_lost(personas, session, images, phantoms, tmp_path):
    paths = write_eyelink_asc(simulated(phantoms[:2], 1000, n_fix=6), tmp_path / "a.asc")
    rec = upload(personas, session, paths["asc"])
    services.recording_parse(recording_id=rec.pk)
    rec.refresh_from_db()
    assert not [w for w in rec.warnings if "stored where" in w]
    q = rec.quality
    assert q["fixations_stored"] == q["fixations_kept"] == q["fixations_parsed"]
    assert q["dropped"] == {"count": 0, "by_reason": {}, "stimuli": []}
