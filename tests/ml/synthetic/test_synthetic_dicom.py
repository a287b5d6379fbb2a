"""DICOM and PNG writers: a valid DX file full of fake PHI, MONOCHROME1 inverted, PNG round trip."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from ml.synthetic import fake_identity, make_phantom, write_dicom, write_png

# PS3.15 basic-profile attributes the generator must fill, so a de-identifier is exercised on all.
REQUIRED_PHI = {
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "AccessionNumber",
    "StudyDate",
    "SeriesDate",
    "StudyTime",
    "SeriesTime",
    "StationName",
    "StudyDescription",
    "StudyID",
    "Private",
}


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("CHF", seed=4, height=120, width=100)


def test_monochrome2_file_is_a_valid_12_bit_dx(phantom, tmp_path):
    out = write_dicom(phantom, tmp_path / "a.dcm", seed=1)
    ds = pydicom.dcmread(out.path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == out.sop_uid
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.Modality == "DX"
    assert ds.ViewPosition == "PA"
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx(list(phantom.pixel_spacing_mm))
    assert float(ds.WindowCenter) == pytest.approx(phantom.window_center)
    assert float(ds.WindowWidth) == pytest.approx(phantom.window_width)
    assert np.array_equal(ds.pixel_array, phantom.image)
    assert out.path.read_bytes()[128:132] == b"DICM"


def test_monochrome1_stores_inverted_values_and_window(phantom, tmp_path):
    out = write_dicom(phantom, tmp_path / "m1.dcm", photometric="MONOCHROME1", seed=1)
    ds = pydicom.dcmread(out.path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert np.array_equal(ds.pixel_array.astype(int), 4095 - phantom.image.astype(int))
    assert float(ds.WindowCenter) == pytest.approx(4095 - phantom.window_center)
    # Lungs (dark in MONOCHROME2) are high values when stored as MONOCHROME1.
    lungs = ds.pixel_array[phantom.masks["lungs"]].mean()
    assert lungs > ds.pixel_array[phantom.masks["heart"]].mean()


def test_every_phi_attribute_holds_its_fake_value_and_is_in_the_bytes(phantom, tmp_path):
    out = write_dicom(phantom, tmp_path / "phi.dcm", seed=9, burned_in_annotation=True)
    ds = pydicom.dcmread(out.path)
    raw = out.path.read_bytes()
    written = {p.keyword for p in out.phi}
    assert written >= REQUIRED_PHI
    for p in out.phi:
        element = ds[p.tag]
        assert str(element.value) == p.value, p.keyword
        assert p.value.strip(), p.keyword
        if p.searchable:
            assert p.value.encode("latin-1") in raw, p.keyword
    searchable = [p for p in out.phi if p.searchable]
    assert len(searchable) >= 30
    # Searchable values are long enough that a byte match is not a coincidence.
    assert all(len(p.value) >= 6 for p in searchable)
    block = ds.private_block(0x0011, "SYNTHETIC CXR LAB")
    assert str(ds.PatientName) in str(block[0x01].value)
    assert ds.BurnedInAnnotation == "YES"
    assert pydicom.dcmread(write_dicom(phantom, tmp_path / "n.dcm").path).BurnedInAnnotation == "NO"


def test_same_seed_same_bytes_different_seed_different_identity(phantom, tmp_path):
    a = write_dicom(phantom, tmp_path / "a.dcm", seed=3)
    b = write_dicom(phantom, tmp_path / "b.dcm", seed=3)
    c = write_dicom(phantom, tmp_path / "c.dcm", seed=4)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sop_uid != c.sop_uid and a.study_uid != c.study_uid
    ia, ic = fake_identity(3), fake_identity(4)
    assert ia.patient_name != ic.patient_name and ia.patient_id != ic.patient_id
    assert ia == fake_identity(3)


def test_explicit_identity_is_used(phantom, tmp_path):
    ident = fake_identity(42)
    ds = pydicom.dcmread(write_dicom(phantom, tmp_path / "x.dcm", identity=ident).path)
    assert ds.PatientID == ident.patient_id and ds.AccessionNumber == ident.accession_number


def test_png_8_bit_is_windowed_and_16_bit_is_lossless(phantom, tmp_path):
    from PIL import Image

    p8 = write_png(phantom, tmp_path / "a.png")
    p16 = write_png(phantom, tmp_path / "b.png", bits=16)
    a8 = np.asarray(Image.open(p8))
    a16 = np.asarray(Image.open(p16))
    assert a8.dtype == np.uint8 and a8.shape == phantom.image.shape
    assert np.array_equal(a16.astype(np.uint16), phantom.image)
    low = phantom.window_center - phantom.window_width / 2
    expected = np.clip(np.rint((phantom.image - low) / phantom.window_width * 255), 0, 255)
    assert np.abs(a8.astype(int) - expected).max() <= 1
    assert a8[phantom.masks["lungs"]].mean() < a8[phantom.masks["heart"]].mean()
    assert write_png(phantom, tmp_path / "c.png").read_bytes() == p8.read_bytes()
    with pytest.raises(ValueError):
        write_png(phantom, tmp_path / "d.png", bits=12)
