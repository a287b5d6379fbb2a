"""Services of the imaging app: ingest, duplicates, keys, labels, CSV import, delete."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from pydicom import dcmread

from apps.imaging import services
from apps.imaging.models import DeidentificationAudit, Image, ImageClass
from apps.imaging.services import ImageRejected, Upload
from ml import imaging
from tests.apps.imaging.conftest import stored_files
from tests.apps.imaging.dicoms import (
    PHI,
    PRIVATE_VALUE,
    STUDY_UID,
    dicom_bytes,
    gradient,
    png_bytes,
)

pytestmark = pytest.mark.django_db


def ingest(lab, user, name, data, **kwargs):
    return services.image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=name, size=len(data), **kwargs
    )


def test_a_new_lab_gets_the_default_classes(personas):
    names = list(ImageClass.objects.filter(lab=personas.lab_a).values_list("name", flat=True))
    assert names == ["Normal", "CHF", "Pneumonia"]


def test_dicom_ingest_stores_deidentified_files_and_an_audit(personas, media):
    data = dicom_bytes(gradient(40, 30), bits_stored=12, burned_in=True)
    result = ingest(personas.lab_a, personas.researcher_a, "abc123.dcm", data)
    assert result.status == "created"
    image = result.image
    assert image.key == "abc123" and (image.width, image.height) == (30, 40)
    assert image.source_format == "dicom" and image.bits_stored == 12
    assert image.view_position == "PA" and image.pixel_spacing_row == pytest.approx(0.139)
    assert image.burned_in_annotation and "review" in result.message
    assert image.uploaded_by == personas.researcher_a
    files = stored_files(media)
    # The DICOM, its preview and thumbnail: the float array is read from the DICOM.
    assert len(files) == 3 and not any(".tmp" in f.relative_to(media).parts for f in files)
    assert image.array_path == image.dicom_path
    for path in (image.dicom_path, image.preview_path, image.thumbnail_path, image.array_path):
        assert path.startswith(f"imaging/lab-{personas.lab_a.pk}/")
        assert path.rsplit("/", 1)[1].split(".")[0] in {f.stem for f in files}  # sha256 names
    stored = (media / image.dicom_path).read_bytes()
    for keyword, value in PHI.items():
        assert value.encode() not in stored, keyword
    assert PRIVATE_VALUE.encode() not in stored
    ds = dcmread(io.BytesIO(stored))
    assert ds.PatientIdentityRemoved == "YES" and ds.StudyInstanceUID != STUDY_UID
    array = services.image_array(image=image)
    assert array.shape == (40, 30) and array.dtype == np.float32
    np.testing.assert_array_equal(array, imaging.read_dicom(io.BytesIO(data))[0])
    audit = DeidentificationAudit.objects.get(image=image)
    assert "PatientName" in audit.removed_attributes
    assert not any(v in str(audit.removed_attributes) for v in PHI.values())


def test_uids_are_stable_within_a_lab_and_differ_across_labs(personas, media):
    px = gradient(8, 8)
    a = ingest(personas.lab_a, personas.admin_a, "one.dcm", dicom_bytes(px)).image
    b = ingest(personas.lab_b, personas.admin_b, "one.dcm", dicom_bytes(px)).image
    ds_a = dcmread(media / a.dicom_path)
    ds_b = dcmread(media / b.dicom_path)
    assert ds_a.StudyInstanceUID != ds_b.StudyInstanceUID
    # A second image of the same study in lab A keeps the study's new UID.
    a2 = ingest(
        personas.lab_a, personas.admin_a, "two.dcm", dicom_bytes(gradient(8, 8, seed=1))
    ).image
    assert dcmread(media / a2.dicom_path).StudyInstanceUID == ds_a.StudyInstanceUID


def test_duplicate_is_reported_not_stored_twice(personas, media):
    data = dicom_bytes(gradient(8, 8))
    first = ingest(personas.lab_a, personas.admin_a, "x.dcm", data)
    n_files = len(stored_files(media))
    again = ingest(personas.lab_a, personas.admin_a, "renamed.dcm", data)
    assert again.status == "duplicate" and again.image == first.image
    assert "'x'" in again.message and "renamed.dcm" in again.message
    assert Image.objects.count() == 1 and len(stored_files(media)) == n_files


def test_key_taken_by_other_pixels_is_rejected(personas, media):
    ingest(
        personas.lab_a,
        personas.admin_a,
        "same.png",
        png_bytes(gradient(4, 4, maximum=255, dtype=np.uint8)),
    )
    n_files = len(stored_files(media))
    with pytest.raises(ImageRejected, match="same.dcm: the key 'same' is already used"):
        ingest(personas.lab_a, personas.admin_a, "same.dcm", dicom_bytes(gradient(4, 4)))
    assert Image.objects.count() == 1 and len(stored_files(media)) == n_files


def test_a_failed_row_removes_the_files_it_wrote(personas, media, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(DeidentificationAudit.objects, "create", boom)
    with pytest.raises(RuntimeError):
        ingest(personas.lab_a, personas.admin_a, "a.dcm", dicom_bytes(gradient(8, 8)))
    assert Image.objects.count() == 0
    assert stored_files(media) == []


def test_batch_needs_write_role(personas):
    with pytest.raises(PermissionDenied):
        services.image_upload_batch(lab=personas.lab_a, uploaded_by=personas.viewer_a, uploads=[])


def test_batch_ingests_each_file_independently(personas):
    good = dicom_bytes(gradient(8, 8))
    uploads = [
        Upload(file=io.BytesIO(good), filename="good.dcm", size=len(good)),
        Upload(file=io.BytesIO(b""), filename="empty.dcm", size=0),
    ]
    results = services.image_upload_batch(
        lab=personas.lab_a, uploaded_by=personas.researcher_a, uploads=uploads
    )
    assert [r.status for r in results] == ["created", "rejected"]
    assert results[1].message == "empty.dcm: is empty."


def test_label_update_and_vocabulary(personas):
    image = ingest(personas.lab_a, personas.admin_a, "k.dcm", dicom_bytes(gradient(8, 8))).image
    services.image_update(
        image=image, actor=personas.researcher_a, label="chf", findings={"effusion": True}
    )
    image.refresh_from_db()
    assert image.label == "CHF" and image.findings == {"effusion": True}
    with pytest.raises(ValidationError, match="not a class"):
        services.image_update(image=image, actor=personas.researcher_a, label="Fracture")
    with pytest.raises(PermissionDenied):
        services.image_update(image=image, actor=personas.viewer_a, label="Normal")
    services.image_class_create(lab=personas.lab_a, actor=personas.admin_a, name="Fracture")
    services.image_update(image=image, actor=personas.researcher_a, label="fracture")
    assert image.label == "Fracture"
    with pytest.raises(ValidationError, match="already"):
        services.image_class_create(lab=personas.lab_a, actor=personas.admin_a, name="FRACTURE")
    with pytest.raises(ValidationError, match="relabel"):
        services.image_class_delete(
            image_class=ImageClass.objects.get(lab=personas.lab_a, name="Fracture"),
            actor=personas.admin_a,
        )


MASTER_SHEET = (
    "dicom_id,path,study_id,Normal,CHF,pneumonia,consolidation\n"
    "d1,files/p1/d1.dcm,s1,1,0,0,0\n"
    "d2,files/p2/d2.dcm,s2,0,1,0,1\n"
    "d3,files/p3/d3.dcm,s3,0,0,1,1\n"
    "not-uploaded,files/p4/x.dcm,s4,1,0,0,0\n"
)


def test_egd_cxr_master_sheet_sets_labels(personas):
    for i, key in enumerate(("d1", "d2", "d3")):
        ingest(personas.lab_a, personas.admin_a, f"{key}.dcm", dicom_bytes(gradient(8, 8, seed=i)))
    report = services.image_labels_import_csv(
        lab=personas.lab_a,
        actor=personas.researcher_a,
        file=io.BytesIO(MASTER_SHEET.encode()),
        filename="master_sheet.csv",
        finding_columns=["consolidation"],
    )
    assert (report.rows, report.updated, report.unknown_keys) == (4, 3, ["not-uploaded"])
    labels = dict(Image.objects.values_list("key", "label"))
    assert labels == {"d1": "Normal", "d2": "CHF", "d3": "Pneumonia"}
    assert Image.objects.get(key="d2").findings == {"consolidation": True}


def test_bad_csv_rows_change_nothing_and_name_the_line(personas):
    ingest(personas.lab_a, personas.admin_a, "d1.dcm", dicom_bytes(gradient(8, 8)))
    sheet = "dicom_id,Normal,CHF,pneumonia\nd1,1,0,0\nd2,1,1,0\nd3,x,0,0\n"
    with pytest.raises(ValidationError) as err:
        services.image_labels_import_csv(
            lab=personas.lab_a,
            actor=personas.admin_a,
            file=io.BytesIO(sheet.encode()),
            filename="s.csv",
        )
    text = str(err.value)
    assert "s.csv: line 3: more than one class" in text and "line 4" in text
    assert Image.objects.get(key="d1").label == ""
    with pytest.raises(ValidationError, match="needs a 'key' or 'dicom_id' column"):
        services.image_labels_import_csv(
            lab=personas.lab_a,
            actor=personas.admin_a,
            file=io.BytesIO(b"a,b\n1,2\n"),
            filename="s.csv",
        )
    with pytest.raises(ValidationError, match="not UTF-8"):
        services.image_labels_import_csv(
            lab=personas.lab_a,
            actor=personas.admin_a,
            file=io.BytesIO(b"key,label\n\xff\xfe,x\n"),
            filename="s.csv",
        )


def test_label_column_csv(personas):
    ingest(personas.lab_a, personas.admin_a, "k1.dcm", dicom_bytes(gradient(8, 8)))
    report = services.image_labels_import_csv(
        lab=personas.lab_a,
        actor=personas.admin_a,
        file=io.BytesIO(b"key,label\nk1,pneumonia\n"),
        filename="labels.csv",
    )
    assert report.updated == 1 and Image.objects.get().label == "Pneumonia"


def test_delete_removes_row_and_files(personas, media, django_capture_on_commit_callbacks):
    image = ingest(personas.lab_a, personas.admin_a, "d.dcm", dicom_bytes(gradient(8, 8))).image
    with pytest.raises(PermissionDenied):
        services.image_delete(image=image, actor=personas.viewer_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.image_delete(image=image, actor=personas.researcher_a)
    assert Image.objects.count() == 0
    assert stored_files(media) == []
    assert DeidentificationAudit.objects.get().image is None  # the audit stays
