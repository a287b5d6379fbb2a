"""Write phantoms as DICOM (full of fake PHI, to exercise de-identification) and as PNG."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.synthetic.phantom import MAX_VALUE, Phantom

__all__ = [
    "FakeIdentity",
    "PhiValue",
    "WrittenDicom",
    "fake_identity",
    "write_dicom",
    "write_png",
]

# Digital X-Ray Image Storage - For Presentation, as MIMIC-CXR's DX images.
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
PRIVATE_GROUP = 0x0011
PRIVATE_CREATOR = "SYNTHETIC CXR LAB"

_FIRST = [
    "Jane",
    "John",
    "Maria",
    "Ahmed",
    "Li",
    "Olga",
    "Kwame",
    "Sofia",
    "Ravi",
    "Emma",
    "Lucas",
    "Aiko",
    "Mateo",
    "Fatima",
    "Noah",
    "Ingrid",
]
_LAST = [
    "Doe",
    "Roe",
    "Moreau",
    "Okafor",
    "Tanaka",
    "Novak",
    "Silva",
    "Kowalski",
    "Haddad",
    "Lindqvist",
    "Castillo",
    "Nguyen",
    "Brennan",
    "Petrov",
    "Adeyemi",
    "Fischer",
]
_STREETS = ["Maple", "Harbor", "Willow", "Granite", "Orchard", "Juniper", "Beacon", "Cedar"]
_CITIES = ["Springfield", "Riverton", "Lakeside", "Fairview", "Millbrook", "Ashford"]


@dataclass(frozen=True)
class FakeIdentity:
    """A made-up patient, visit and staff; every value is distinctive enough to byte-search.

    Dates are "YYYYMMDD" and times "HHMMSS.ffffff" strings, as DICOM stores them.
    """

    patient_name: str
    patient_id: str
    other_patient_ids: str
    birth_date: str
    sex: str
    age: str
    address: str
    phone: str
    mother_birth_name: str
    institution_name: str
    institution_address: str
    department: str
    referring_physician: str
    referring_physician_address: str
    referring_physician_phone: str
    performing_physician: str
    reading_physician: str
    requesting_physician: str
    physician_of_record: str
    operator: str
    accession_number: str
    study_id: str
    study_date: str
    study_time: str
    series_time: str
    acquisition_time: str
    station_name: str
    device_serial_number: str
    study_description: str
    series_description: str
    patient_comments: str
    additional_history: str
    occupation: str


def fake_identity(seed: int) -> FakeIdentity:
    """A seeded fake identity.

    Args:
        seed: the same seed gives the same identity.

    Returns:
        The FakeIdentity.
    """
    rng = np.random.default_rng([seed, 77])

    def pick(seq: list[str]) -> str:
        return seq[int(rng.integers(len(seq)))]

    def person() -> str:
        # A numeric suffix on the last name makes each name unique across files.
        return f"{pick(_LAST)}{int(rng.integers(100, 999))}^{pick(_FIRST)}"

    def digits(n: int) -> str:
        return "".join(str(int(d)) for d in rng.integers(0, 10, n))

    birth = _dt.date(1930, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 70 * 365)))
    study = _dt.date(2015, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 6 * 365)))
    age_years = (study - birth).days // 365
    seconds = int(rng.integers(7 * 3600, 20 * 3600))

    def clock(offset: int) -> str:
        s = seconds + offset
        return f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}.{int(rng.integers(0, 10**6)):06d}"

    city = pick(_CITIES)
    return FakeIdentity(
        patient_name=person(),
        patient_id=f"MRN{digits(8)}",
        other_patient_ids=f"ALT{digits(8)}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=pick(["F", "M"]),
        age=f"{age_years:03d}Y",
        address=f"{int(rng.integers(10, 9999))} {pick(_STREETS)} Street, {city} {digits(5)}",
        phone=f"555-01{digits(2)}-{digits(4)}",
        mother_birth_name=person(),
        institution_name=f"{city} General Hospital {digits(3)}",
        institution_address=f"{int(rng.integers(1, 500))} Hospital Road, {city} {digits(5)}",
        department=f"Radiology Wing {digits(3)}",
        referring_physician=person(),
        referring_physician_address=f"{int(rng.integers(1, 99))} Clinic Lane, {city} {digits(5)}",
        referring_physician_phone=f"555-02{digits(2)}-{digits(4)}",
        performing_physician=person(),
        reading_physician=person(),
        requesting_physician=person(),
        physician_of_record=person(),
        operator=person(),
        accession_number=f"ACC{digits(9)}",
        study_id=f"SID{digits(6)}",
        study_date=study.strftime("%Y%m%d"),
        study_time=clock(0),
        series_time=clock(60),
        acquisition_time=clock(95),
        station_name=f"XRAYROOM{digits(3)}",
        device_serial_number=f"SN{digits(10)}",
        study_description=f"CHEST PA {digits(4)} for {pick(_LAST)}",
        series_description=f"PA ERECT {digits(4)}",
        patient_comments=f"Allergic to penicillin, file {digits(6)}",
        additional_history=f"Smoker since {int(rng.integers(1960, 2005))}, case {digits(6)}",
        occupation=f"Carpenter {digits(3)}",
    )


@dataclass(frozen=True)
class PhiValue:
    """One PHI value written into the file.

    Attributes:
        keyword: the DICOM keyword, or "Private" for the private element.
        tag: (group, element).
        value: the value as written (a DICOM string).
        searchable: True when the value is long and distinctive enough that finding its bytes in a
            file means the PHI leaked (False for "F", "045Y" and the like, which a byte search would
            find by chance).
    """

    keyword: str
    tag: tuple[int, int]
    value: str
    searchable: bool


@dataclass(frozen=True)
class WrittenDicom:
    """What ``write_dicom`` wrote.

    Attributes:
        path: the file.
        phi: every PHI value written.
        study_uid, series_uid, sop_uid: the UIDs written (a de-identifier must replace them).
        photometric: "MONOCHROME1" or "MONOCHROME2".
    """

    path: Path
    phi: list[PhiValue] = field(default_factory=list)
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    photometric: str = "MONOCHROME2"


def write_dicom(
    phantom: Phantom,
    path: str | Path,
    *,
    photometric: str = "MONOCHROME2",
    identity: FakeIdentity | None = None,
    seed: int = 0,
    burned_in_annotation: bool = False,
) -> WrittenDicom:
    """Write a phantom as a DX "for presentation" DICOM file with a fake identity everywhere.

    12 bits stored in 16 allocated, unsigned, explicit VR little endian, with pixel spacing, view
    position and a window. MONOCHROME1 stores the inverted values (and the inverted window centre),
    so that a correct reader shows the same picture.

    Args:
        phantom: the image.
        path: where to write.
        photometric: "MONOCHROME2" (dense = high) or "MONOCHROME1" (dense = low).
        identity: the fake identity; default ``fake_identity(seed)``.
        seed: seeds the identity and the UIDs; the same inputs give the same bytes.
        burned_in_annotation: value of BurnedInAnnotation (YES flags the image for review).

    Returns:
        The WrittenDicom with the PHI that was written.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    ident = identity or fake_identity(seed)
    path = Path(path)
    key = [str(seed), str(phantom.seed), phantom.label, ident.patient_id]
    study_uid = generate_uid(entropy_srcs=[*key, "study"])
    series_uid = generate_uid(entropy_srcs=[*key, "series"])
    sop_uid = generate_uid(entropy_srcs=[*key, "sop", photometric])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SYNTHCXR_1"
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)

    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "DX"
    ds.Manufacturer = "Synthetic CXR Lab"
    ds.ManufacturerModelName = "Phantom Generator"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = phantom.view_position
    ds.ImageLaterality = "U"

    phi: list[PhiValue] = []

    def put(keyword: str, value: str, searchable: bool = True) -> None:
        setattr(ds, keyword, value)
        elem = ds[keyword]
        phi.append(PhiValue(keyword, (elem.tag.group, elem.tag.element), value, searchable))

    put("PatientName", ident.patient_name)
    put("PatientID", ident.patient_id)
    put("OtherPatientIDs", ident.other_patient_ids)
    put("PatientBirthDate", ident.birth_date)
    put("PatientSex", ident.sex, searchable=False)
    put("PatientAge", ident.age, searchable=False)
    put("PatientAddress", ident.address)
    put("PatientTelephoneNumbers", ident.phone)
    put("PatientMotherBirthName", ident.mother_birth_name)
    put("Occupation", ident.occupation)
    put("AdditionalPatientHistory", ident.additional_history)
    put("PatientComments", ident.patient_comments)
    put("InstitutionName", ident.institution_name)
    put("InstitutionAddress", ident.institution_address)
    put("InstitutionalDepartmentName", ident.department)
    put("ReferringPhysicianName", ident.referring_physician)
    put("ReferringPhysicianAddress", ident.referring_physician_address)
    put("ReferringPhysicianTelephoneNumbers", ident.referring_physician_phone)
    put("PerformingPhysicianName", ident.performing_physician)
    put("NameOfPhysiciansReadingStudy", ident.reading_physician)
    put("RequestingPhysician", ident.requesting_physician)
    put("PhysiciansOfRecord", ident.physician_of_record)
    put("OperatorsName", ident.operator)
    put("AccessionNumber", ident.accession_number)
    put("StudyID", ident.study_id)
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        put(keyword, ident.study_date)
    put("StudyTime", ident.study_time)
    put("SeriesTime", ident.series_time)
    put("AcquisitionTime", ident.acquisition_time)
    put("ContentTime", ident.acquisition_time[:6] + ".500000")
    put("AcquisitionDateTime", ident.study_date + ident.acquisition_time)
    put("StationName", ident.station_name)
    put("DeviceSerialNumber", ident.device_serial_number)
    put("StudyDescription", ident.study_description)
    put("SeriesDescription", ident.series_description)

    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    private_value = f"{ident.patient_name} {ident.patient_id}"
    block.add_new(0x01, "LO", private_value)
    phi.append(PhiValue("Private", (PRIVATE_GROUP, 0x1001), private_value, True))
    ds.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"

    stored = phantom.image
    center = phantom.window_center
    if photometric == "MONOCHROME1":
        stored = (MAX_VALUE - stored.astype(np.int32)).astype(np.uint16)
        center = MAX_VALUE - center
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [f"{s:.6g}" for s in phantom.pixel_spacing_mm]
    ds.ImagerPixelSpacing = ds.PixelSpacing
    ds.WindowCenter = f"{center:.1f}"
    ds.WindowWidth = f"{phantom.window_width:.1f}"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.LossyImageCompression = "00"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()

    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return WrittenDicom(
        path=path,
        phi=phi,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        photometric=photometric,
    )


def write_png(phantom: Phantom, path: str | Path, *, bits: int = 8) -> Path:
    """Write a phantom as a grayscale PNG.

    Args:
        phantom: the image.
        path: where to write.
        bits: 8 writes the windowed image (what a lab exports for viewing); 16 writes the stored
            12-bit values unchanged in a 16-bit PNG.

    Returns:
        The path.
    """
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if bits == 8:
        low = phantom.window_center - phantom.window_width / 2.0
        scaled = (phantom.image.astype(np.float32) - low) / phantom.window_width
        data = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
        Image.fromarray(data, mode="L").save(path, format="PNG")
    elif bits == 16:
        Image.fromarray(phantom.image.astype(np.uint16)).save(path, format="PNG")
    else:
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    return path
