"""Real DICOM, PNG and JPEG files for the imaging tests, built with pydicom and Pillow.

``make_dicom`` fills every identifying attribute with a recognisable fake value (``PHI`` lists
them) so that tests can search the stored bytes for each one.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

STUDY_UID = "1.2.826.0.1.3680043.8.498.11111111111111111111"
SERIES_UID = "1.2.826.0.1.3680043.8.498.22222222222222222222"
SOP_UID = "1.2.826.0.1.3680043.8.498.33333333333333333333"
FRAME_UID = "1.2.826.0.1.3680043.8.498.44444444444444444444"

# keyword -> a fake identifying value, each unique enough to find by a byte search.
PHI: dict[str, str] = {
    "PatientName": "Doe^Johnathan^Q",
    "PatientID": "MRN-99887766",
    "PatientBirthDate": "19470312",
    "PatientBirthTime": "081533",
    "PatientAddress": "42 Wallaby Way, Sydney",
    "PatientTelephoneNumbers": "555-0199-222",
    "OtherPatientIDs": "OTHERID-5544",
    "OtherPatientNames": "Roe^Jonny",
    "PatientMotherBirthName": "Smithers^Margaret",
    "MilitaryRank": "Colonelrank",
    "EthnicGroup": "Ethnicgroupx",
    "Occupation": "Lighthousekeeper",
    "AdditionalPatientHistory": "Fell off ladder at Wallaby farm",
    "PatientComments": "Very nervous patient comment",
    "PatientAge": "077Y",
    "PatientWeight": "81.5",
    "PatientSize": "1.83",
    "AccessionNumber": "ACC-20230415-777",
    "InstitutionName": "Saint Elsewhere General Hospital",
    "InstitutionAddress": "1 Hospital Road, Springfield",
    "InstitutionalDepartmentName": "Radiology Dept Zeta",
    "ReferringPhysicianName": "House^Gregory",
    "PerformingPhysicianName": "Quinn^Michaela",
    "NameOfPhysiciansReadingStudy": "Strange^Stephen",
    "PhysiciansOfRecord": "Kildare^James",
    "RequestingPhysician": "Welby^Marcus",
    "OperatorsName": "Techie^Tina",
    "StationName": "XRAYROOM7",
    "DeviceSerialNumber": "SN-ABC-123456",
    "StudyID": "STUDY-4321",
    "StudyDescription": "CHEST PA for Johnathan",
    "SeriesDescription": "PA series of Doe",
    "ImageComments": "Portable film at bed 12",
    "ProtocolName": "Doe chest protocol",
    "StudyDate": "20230415",
    "SeriesDate": "20230416",
    "AcquisitionDate": "20230417",
    "ContentDate": "20230418",
    "StudyTime": "101112",
    "SeriesTime": "101213",
    "AcquisitionTime": "101314",
    "ContentTime": "101415",
    "AcquisitionDateTime": "20230419101516",
    "StudyInstanceUID": STUDY_UID,
    "SeriesInstanceUID": SERIES_UID,
    "SOPInstanceUID": SOP_UID,
    "FrameOfReferenceUID": FRAME_UID,
}
PRIVATE_VALUE = "Private secret of Johnathan"
NESTED_NAME = "Nested^Physician^Name"


def make_dicom(
    pixels: np.ndarray,
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    signed: bool = False,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    voi_lut: tuple[int, int, list[int]] | None = None,
    phi: bool = True,
    burned_in: bool = False,
    view_position: str = "PA",
    pixel_spacing: tuple[float, float] | None = (0.139, 0.139),
    transfer_syntax: str = ExplicitVRLittleEndian,
    rows: int | None = None,
    columns: int | None = None,
) -> Dataset:
    """A DX image with ``pixels`` (uint8, uint16 or int16), optionally full of fake PHI.

    ``voi_lut`` is (first_mapped, bits, lut_values).
    """
    pixels = np.asarray(pixels)
    bits_allocated = 8 if pixels.dtype.itemsize == 1 else 16
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = SOP_UID if phi else generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    meta.SourceApplicationEntityTitle = "ELSEWHERE_AE"
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.Modality = "DX"
    ds.Manufacturer = "Acme Imaging"
    ds.ViewPosition = view_position
    if pixel_spacing:
        ds.ImagerPixelSpacing = list(pixel_spacing)
    ds.Rows = rows if rows is not None else pixels.shape[0]
    ds.Columns = columns if columns is not None else pixels.shape[1]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored or bits_allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        first, bits, values = voi_lut
        item = Dataset()
        item.LUTDescriptor = [len(values), first, bits]
        item.LUTData = values
        item["LUTDescriptor"].VR = "US"
        item["LUTData"].VR = "US"
        ds.VOILUTSequence = Sequence([item])
    if burned_in:
        ds.BurnedInAnnotation = "YES"
    if phi:
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
        ds.add_new(0x00091010, "LO", "ACME PRIVATE")
        ds.add_new(0x00091011, "LO", PRIVATE_VALUE)
        ref = Dataset()
        ref.ReferencedSOPClassUID = DigitalXRayImageStorageForPresentation
        ref.ReferencedSOPInstanceUID = SOP_UID
        ds.ReferencedImageSequence = Sequence([ref])
        req = Dataset()
        req.RequestedProcedureID = "REQ-998877"
        req.ScheduledPerformingPhysicianName = NESTED_NAME
        ds.RequestAttributesSequence = Sequence([req])
        code = Dataset()
        code.CodeValue = "X1"
        code.CodeMeaning = "Meaning"
        code.add_new(0x00111001, "LO", PRIVATE_VALUE + " nested")
        ds.AnatomicRegionSequence = Sequence([code])
    else:
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    if transfer_syntax != ExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(transfer_syntax)
    return ds


def dicom_bytes(pixels: np.ndarray, **kwargs) -> bytes:
    out = io.BytesIO()
    make_dicom(pixels, **kwargs).save_as(out, enforce_file_format=True)
    return out.getvalue()


def write_dicom(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    path.write_bytes(dicom_bytes(pixels, **kwargs))
    return path


def gradient(height: int = 24, width: int = 32, *, maximum: int = 4095, dtype=np.uint16, seed=0):
    """A gradient with a little noise: distinct images for distinct seeds."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, maximum, width)[None, :].repeat(height, 0)
    noisy = base + rng.integers(0, max(2, maximum // 50), size=base.shape)
    return np.clip(noisy, 0, maximum).astype(dtype)


def png_bytes(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(pixels: np.ndarray, quality: int = 95) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()
