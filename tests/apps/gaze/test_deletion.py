"""Fixations have no database foreign keys (they are bulk rows: see Fixation), so every way a
reading goes must take its fixations with it through the ORM's cascade, and a reparse must not
leave the old ones behind."""

from __future__ import annotations

from apps.gaze import services
from apps.gaze.models import Fixation, Reading
from apps.imaging.services import image_delete
from apps.labs.services import lab_delete
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import simulated


def _parsed(session, phantoms, tmp_path, name: str = "a.asc"):
    paths = write_eyelink_asc(simulated(phantoms, 500, n_fix=5), tmp_path / name)
    [rec] = services.recording_upload(
        session=session, uploaded_by=None, uploads=[services.tmp_upload(paths["asc"])],
        enqueue=False,
    )  # fmt: skip
    rec = services.recording_parse(recording_id=rec.pk)
    assert rec.status == "done"
    return rec


def _orphans() -> int:
    return Fixation.objects.exclude(reading_id__in=Reading.objects.values("pk")).count()


def test_reparse_replaces_fixations(images, session, phantoms, tmp_path):
    rec = _parsed(session, phantoms, tmp_path)
    before = Fixation.objects.filter(reading__recording=rec).count()
    assert before >= 15
    rec = services.recording_reparse(recording=rec)
    services.recording_parse(recording_id=rec.pk)
    assert Fixation.objects.filter(reading__recording=rec).count() == before
    assert Fixation.objects.count() == before and _orphans() == 0


def test_deleting_an_image_a_recording_or_a_session_deletes_fixations(
    personas, images, session, phantoms, tmp_path
):
    rec = _parsed(session, phantoms, tmp_path)
    total = Fixation.objects.count()
    first = Reading.objects.filter(recording=rec, image=images[0]).get()
    n_first = first.fixations.count()
    assert 0 < n_first < total
    image_delete(image=images[0], actor=personas.researcher_a)
    assert Fixation.objects.count() == total - n_first and _orphans() == 0
    services.recording_delete(recording=rec)
    assert Fixation.objects.count() == 0
    _parsed(session, phantoms, tmp_path, "b.asc")
    assert Fixation.objects.count() > 0
    services.reading_session_delete(session=session)
    assert Fixation.objects.count() == 0 and _orphans() == 0


def test_deleting_a_lab_deletes_its_fixations_only(personas, images, session, phantoms, tmp_path):
    _parsed(session, phantoms, tmp_path)
    assert Fixation.objects.filter(lab=personas.lab_a).count() > 0
    lab_delete(lab=personas.lab_a, actor=personas.admin_a)  # readers, sessions, images...
    assert Fixation.objects.count() == 0 and _orphans() == 0
