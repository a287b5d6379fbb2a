"""Acceptance: a synthetic DICOM full of PHI (ml.synthetic), uploaded through the API, is stored
as a file in which none of the PHI values appear, with new UIDs and PatientIdentityRemoved."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread

from apps.imaging.models import Image
from apps.imaging.services import image_array
from ml import synthetic
from tests.apps.imaging.batches import upload

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_every_phi_value_the_generator_wrote_is_gone(personas, media, tmp_path, photometric):
    phantom = synthetic.make_phantom("CHF", seed=3, height=300, width=250)
    written = synthetic.write_dicom(
        phantom, tmp_path / "p10_s1.dcm", photometric=photometric, seed=3,
        burned_in_annotation=True,
    )  # fmt: skip
    body = upload(personas.researcher_a, personas.lab_a, ("p10_s1.dcm", written.path.read_bytes()))
    assert body["created"] == 1, body
    image = Image.objects.get()
    assert image.burned_in_annotation and image.photometric_interpretation == photometric
    stored = (media / image.dicom_path).read_bytes()
    searched = [p for p in written.phi if p.searchable]
    assert len(searched) >= 30
    for phi in searched:
        assert phi.value.encode() not in stored, (phi.keyword, phi.value)
    for uid in (written.study_uid, written.series_uid, written.sop_uid):
        assert uid.encode() not in stored
    ds = dcmread(io.BytesIO(stored))
    # Every attribute the generator filled, the short ones (sex, age) too, is gone or changed.
    for phi in written.phi:
        element = ds.get(phi.tag)
        assert (
            element is None
            or str(element.value) in ("", "None")
            or (str(element.value) != phi.value)
        ), (phi.keyword, element)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyInstanceUID.startswith("2.25.") and ds.SOPInstanceUID.startswith("2.25.")
    # Whatever the photometric interpretation, the lungs are dark and the spine bright.
    array = image_array(image=image)
    assert array.shape == (300, 250)
    assert array[150, 125] > array[150, 70]
