"""Files go with their rows: deleting a lab, a session or a recording deletes the files no row
names any more, after the deleting transaction commits; pooled saliency maps that counted a
deleted reading are dropped; ``storage_sweep`` removes old files that no row names."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from apps.gaze import services
from apps.gaze.models import Reading, ReadingSession, SaliencyMap
from apps.labs.services import lab_delete
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import ingest_phantoms, simulated

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs as in production


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts
    }


def _parsed_session(personas, phantoms, tmp_path, code: str, name: str) -> ReadingSession:
    reader = services.reader_create(lab=personas.lab_a, code=code)
    session = services.reading_session_create(
        lab=personas.lab_a, reader=reader, created_by=personas.researcher_a, name=name,
        screen_width_mm=531.0, screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
    paths = write_eyelink_asc(
        simulated(phantoms, 1000, n_fix=6), tmp_path / f"{code}.asc", seed=ord(code[-1])
    )
    [rec] = services.recording_upload(
        session=session, uploaded_by=None, uploads=[services.tmp_upload(paths["asc"])],
        enqueue=False,
    )  # fmt: skip
    rec = services.recording_parse(recording_id=rec.pk)
    assert rec.status == "done", rec.errors
    return session


@pytest.fixture
def lab_with_everything(personas, images, phantoms, tmp_path, media):
    s1 = _parsed_session(personas, phantoms, tmp_path, "R1", "S1")
    s2 = _parsed_session(personas, phantoms, tmp_path, "R2", "S2")
    for r in Reading.objects.filter(session=s1):
        services.saliency_map_get_or_create(target_size=(64, 48), reading=r)
    pooled = services.saliency_map_get_or_create(target_size=(64, 48), image=images[0])
    assert pooled.n_readings == 2
    return s1, s2, pooled


def test_deleting_a_session_deletes_its_recording_and_saliency_files(
    lab_with_everything, media, images
):
    s1, s2, pooled = lab_with_everything
    rec1 = s1.recordings.get()
    own = {rec1.file_path} | set(
        SaliencyMap.objects.filter(reading__session=s1).values_list("file_path", flat=True)
    )
    before = _files(media)
    assert own <= before and pooled.file_path in before
    services.reading_session_delete(session=s1)
    after = _files(media)
    assert not own & after  # the recording and its readings' maps are gone
    assert pooled.file_path not in after  # the pool counted S1's reading: dropped, file too
    assert not SaliencyMap.objects.filter(pk=pooled.pk).exists()
    assert s2.recordings.get().file_path in after  # the other session keeps its files
    assert {images[0].dicom_path or images[0].preview_path} <= after  # images stay
    again = services.saliency_map_get_or_create(target_size=(64, 48), image=images[0])
    assert again.n_readings == 1  # made anew from the readings there are


def test_leaving_a_reading_out_of_training_drops_the_pool(lab_with_everything, images):
    s1, _, pooled = lab_with_everything
    reading = Reading.objects.get(session=s1, image=images[0])
    services.reading_update(reading=reading, use_for_training=False)
    assert not SaliencyMap.objects.filter(pk=pooled.pk).exists()
    assert (
        services.saliency_map_get_or_create(target_size=(64, 48), image=images[0]).n_readings == 1
    )


def test_deleting_a_lab_deletes_every_file_of_it(
    lab_with_everything, personas, phantoms, tmp_path, media
):
    other = ingest_phantoms(personas.lab_b, personas.admin_b, phantoms[:1], tmp_path)
    others = {p for p in other[0].file_paths}
    assert _files(media) - others  # lab A has files
    lab_delete(lab=personas.lab_a, actor=personas.admin_a)
    left = _files(media)
    assert left == others, left - others  # nothing of lab A is left, lab B's are untouched


def test_a_rolled_back_delete_deletes_no_file(lab_with_everything, media):
    s1, _, _ = lab_with_everything
    pk = s1.pk
    before = _files(media)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.reading_session_delete(session=s1)
        raise RuntimeError("the request failed after the delete")
    assert _files(media) == before
    assert ReadingSession.objects.filter(pk=pk).exists()


def test_a_file_two_rows_name_stays_until_the_last_goes(
    personas, images, phantoms, tmp_path, media
):
    paths = write_eyelink_asc(simulated(phantoms, 1000, n_fix=6), tmp_path / "same.asc")
    sessions = []
    for code in ("R1", "R2"):
        reader = services.reader_create(lab=personas.lab_a, code=code)
        session = services.reading_session_create(
            lab=personas.lab_a, reader=reader, name=code, created_by=personas.researcher_a
        )
        services.recording_upload(
            session=session, uploaded_by=None, uploads=[services.tmp_upload(paths["asc"])],
            enqueue=False,
        )  # fmt: skip
        sessions.append(session)
    name = sessions[0].recordings.get().file_path
    assert sessions[1].recordings.get().file_path == name  # one file, two rows
    services.reading_session_delete(session=sessions[0])
    assert name in _files(media)
    services.reading_session_delete(session=sessions[1])
    assert name not in _files(media)


def test_storage_sweep_deletes_old_files_no_row_names(personas, images, media, capsys):
    named = set(_files(media))
    old = media / "gaze" / f"lab-{personas.lab_a.pk}" / "recordings" / "ab" / ("ab" + "0" * 62)
    young = media / "imaging" / f"lab-{personas.lab_a.pk}" / "preview" / "cd" / ("cd" + "1" * 62)
    for p in (old, young):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"left behind")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    for p in named:
        os.utime(media / p, (two_days_ago, two_days_ago))
    call_command("storage_sweep", "--dry-run")
    assert old.exists() and "Would delete 1 file(s)" in capsys.readouterr().out
    call_command("storage_sweep")
    assert not old.exists()  # old and named by no row
    assert young.exists()  # perhaps an upload in flight: kept
    assert named <= _files(media)  # every named file kept
