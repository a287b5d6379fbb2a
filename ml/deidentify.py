"""DICOM de-identification, PS3.15 Basic Profile: names, IDs, dates, institutions and private
tags removed or blanked (sequences included), UIDs remapped deterministically per lab with a keyed
hash, and a pseudonymous patient key for patient-level splits. Django-free."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import BinaryIO

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

#: Value of DeidentificationMethod (VR LO: at most 64 characters). The code sequence beside it
#: names the profile (113100); ``deidentify``'s docstring says what was done.
DEIDENTIFICATION_METHOD = "PS3.15 Basic Profile; dates blanked; UIDs HMAC-remapped per lab"


# --- De-identification ----------------------------------------------------------------------

# PS3.15 Annex E, Table E.1-1, Basic Profile: attributes with action Z (kept, zero-length),
# mostly Type 2 attributes an IOD requires to be present.
_BLANK = {
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "ContentDate",
    "ContentTime",
}

# Basic Profile attributes removed (X, or D/Z/U handled as removal) whose VR the generic rules
# below do not cover. Person names (PN), dates and times (DA, DT, TM), UIDs (UI) and private
# tags are handled by VR, wherever they appear, including inside sequences.
_REMOVE = {
    "AccessionNumber", "AcquisitionComments", "AcquisitionDeviceProcessingDescription",
    "AcquisitionProtocolDescription", "ActualHumanPerformersSequence", "AdditionalPatientHistory",
    "AdmissionID", "AdmittingDiagnosesCodeSequence", "AdmittingDiagnosesDescription", "Allergies",
    "AuthorObserverSequence", "BranchOfService", "CassetteID",
    "CommentsOnThePerformedProcedureStep", "ConfidentialityConstraintOnPatientDataDescription",
    "ContentCreatorIdentificationCodeSequence", "ContributionDescription", "CountryOfResidence",
    "CurrentPatientLocation", "CustodialOrganizationSequence", "DataSetTrailingPadding",
    "DerivationDescription", "DetectorID", "DeviceSerialNumber", "DigitalSignaturesSequence",
    "DischargeDiagnosisDescription", "DistributionAddress", "EthnicGroup",
    "FillerOrderNumberImagingServiceRequest", "FrameComments", "GantryID", "GeneratorID",
    "GraphicAnnotationSequence", "HumanPerformerOrganization", "IconImageSequence",
    "IdentifyingComments", "ImageComments", "ImagePresentationComments",
    "ImagingServiceRequestComments", "Impressions", "InstitutionAddress",
    "InstitutionCodeSequence", "InstitutionName", "InstitutionalDepartmentName",
    "InsurancePlanIdentification", "IntendedRecipientsOfResultsIdentificationSequence",
    "InterpretationApproverSequence", "InterpretationDiagnosisDescription",
    "InterpretationIDIssuer", "InterpretationText", "IssuerOfAdmissionID", "IssuerOfPatientID",
    "IssuerOfServiceEpisodeID", "MedicalAlerts", "MedicalRecordLocator", "MilitaryRank",
    "ModifiedAttributesSequence", "ModifiedImageDescription", "ModifyingDeviceID",
    "Occupation", "OperatorIdentificationSequence", "OrderCallbackPhoneNumber",
    "OrderEntererLocation", "OriginalAttributesSequence", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OverlayComments", "ParticipantSequence", "PatientAddress",
    "PatientAge", "PatientComments", "PatientInstitutionResidence",
    "PatientInsurancePlanCodeSequence", "PatientPrimaryLanguageCodeSequence",
    "PatientReligiousPreference", "PatientSexNeutered", "PatientSize", "PatientState",
    "PatientTelecomInformation", "PatientTelephoneNumbers", "PatientTransportArrangements",
    "PatientWeight", "PerformedLocation", "PerformedProcedureStepDescription",
    "PerformedProcedureStepID", "PerformedStationAETitle",
    "PerformedStationGeographicLocationCodeSequence", "PerformedStationName",
    "PerformedStationNameCodeSequence", "PerformingPhysicianIdentificationSequence",
    "PersonAddress", "PersonIdentificationCodeSequence", "PersonTelephoneNumbers",
    "PhysiciansOfRecordIdentificationSequence", "PhysiciansReadingStudyIdentificationSequence",
    "PlacerOrderNumberImagingServiceRequest", "PreMedication", "PregnancyStatus", "ProtocolName",
    "ReasonForStudy", "ReasonForTheImagingServiceRequest", "ReasonForTheRequestedProcedure",
    "ReferencedPatientAliasSequence", "ReferencedPatientSequence", "ReferencedStudySequence",
    "ReferringPhysicianAddress", "ReferringPhysicianIdentificationSequence",
    "ReferringPhysicianTelephoneNumbers", "RegionOfResidence", "RequestAttributesSequence",
    "RequestedContrastAgent", "RequestedProcedureComments", "RequestedProcedureDescription",
    "RequestedProcedureID", "RequestedProcedureLocation", "RequestingService",
    "ResponsibleOrganization", "ResultsComments", "ResultsDistributionListSequence",
    "ResultsIDIssuer", "ScheduledHumanPerformersSequence", "ScheduledPatientInstitutionResidence",
    "ScheduledPerformingPhysicianIdentificationSequence", "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepLocation", "ScheduledStationAETitle", "ScheduledStationName",
    "SeriesDescription", "ServiceEpisodeDescription", "ServiceEpisodeID", "SmokingStatus",
    "SourceImageSequence", "SpecialNeeds", "StationName", "StudyComments", "StudyDescription",
    "StudyIDIssuer", "TextComments", "TextString", "TopicAuthor", "TopicKeywords",
    "TopicSubject", "TopicTitle", "VerifyingObserverIdentificationCodeSequence",
    "VerifyingObserverSequence", "VerifyingOrganization", "VisitComments",
    "ReferencedPerformedProcedureStepSequence", "ReferencedImageSequence",
    "RequestedProcedureCodeSequence", "PerformedProtocolCodeSequence",
}  # fmt: skip

_REMOVE_TAGS = {tag for name in _REMOVE | _BLANK if (tag := tag_for_keyword(name)) is not None}
_BLANK_TAGS = {tag_for_keyword(name) for name in _BLANK}
_DATE_VRS = {"DA", "DT", "TM"}
# Repeating groups that may carry burned-in text or curves: overlays (60xx) and curves (50xx).
_REPEATING_GROUPS = (0x5000, 0x6000)
# File meta attributes that can name a sending site or carry private data.
_META_REMOVE = ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
                "PrivateInformation")  # fmt: skip


def uid_remap(uid: str, *, lab_key: bytes) -> str:
    """A new UID for ``uid``: the same for the same lab key, unrelated across labs.

    ``2.25.<integer>`` (PS3.5 B.2) from the first 128 bits of HMAC-SHA256(lab_key, uid), so the
    original cannot be recovered without the key and a study's images stay together.
    """
    digest = hmac.new(lab_key, uid.strip().encode("ascii", "replace"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def patient_key(dataset: Dataset, *, lab_key: bytes) -> str:
    """A pseudonymous key for the patient of ``dataset``, read *before* de-identification.

    32 hexadecimal characters of HMAC-SHA256(lab_key, "patient:" + PatientID): the same patient
    gets the same key within a lab (so patient-level splits work on de-identified data) and
    unrelated keys across labs; the PatientID cannot be recovered without the lab's key. Empty
    when the dataset has no PatientID.
    """
    value = str(dataset.get("PatientID", "") or "").strip()
    if not value:
        return ""
    message = b"patient:" + value.encode("utf-8", "replace")
    return hmac.new(lab_key, message, hashlib.sha256).hexdigest()[:32]


def _keep_uid(elem: DataElement) -> bool:
    keyword = elem.keyword or ""
    return keyword.endswith("ClassUID") or keyword in (
        "TransferSyntaxUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "MappingResource",
    )


def _attribute_name(elem: DataElement) -> str:
    if elem.tag.is_private:
        return f"private tag ({elem.tag.group:04X},{elem.tag.element:04X})"
    return (
        elem.keyword
        or keyword_for_tag(elem.tag)
        or f"({elem.tag.group:04X},{elem.tag.element:04X})"
    )


def deidentify(dataset: Dataset, *, lab_key: bytes) -> tuple[Dataset, list[str]]:
    """De-identify ``dataset`` in place per the PS3.15 Basic Application Confidentiality Profile.

    - removes (or, for required Type 2 attributes, blanks) names, IDs, birth date, addresses,
      institution, physicians, operators, accession number, free-text descriptions and
      comments, device identifiers, and every other Basic Profile attribute listed here;
    - blanks or removes every person name (PN) and every date and time (DA, DT, TM) wherever it
      appears, including inside sequences; removes private tags, overlays and curves;
    - remaps every instance UID (Study, Series, SOP Instance, Frame of Reference, and references
      to them) with :func:`uid_remap`, keeping standard class and transfer syntax UIDs;
    - sets PatientIdentityRemoved = YES, DeidentificationMethod (and its code sequence, 113100)
      and LongitudinalTemporalInformationModified = REMOVED, and zeroes the preamble.

    BurnedInAnnotation is kept: pixel text is not removed here, so callers flag such images.

    Returns the dataset and the sorted names of the attributes removed or blanked (never values).
    """
    removed: set[str] = set()

    def visit(ds: Dataset, elem: DataElement) -> None:
        tag = elem.tag
        if tag.is_private or (tag.group & 0xFF00) in _REPEATING_GROUPS:
            removed.add(_attribute_name(elem))
            del ds[tag]
            return
        if tag in _BLANK_TAGS:
            if elem.value not in (None, "", b"", []):
                removed.add(_attribute_name(elem))
            ds[tag].value = None if elem.VR != "SQ" else Sequence()
            return
        if tag in _REMOVE_TAGS or elem.VR == "PN" or elem.VR in _DATE_VRS:
            removed.add(_attribute_name(elem))
            del ds[tag]
            return
        if elem.VR == "UI" and elem.value and not _keep_uid(elem):
            values = elem.value if isinstance(elem.value, list | tuple) else [elem.value]
            mapped = [
                v if str(v) in UID_dictionary else uid_remap(str(v), lab_key=lab_key)
                for v in values
            ]
            elem.value = mapped if len(mapped) > 1 else mapped[0]

    dataset.walk(visit, recursive=True)
    # Type 2 attributes a Part 10 image needs, present even if they were never there.
    for keyword in ("PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber"):
        if keyword not in dataset:
            setattr(dataset, keyword, None)
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    dataset.DeidentificationMethodCodeSequence = Sequence([code])
    dataset.LongitudinalTemporalInformationModified = "REMOVED"

    meta = getattr(dataset, "file_meta", None)
    if meta is not None:
        for keyword in _META_REMOVE:
            if keyword in meta:
                removed.add(keyword)
                delattr(meta, keyword)
        if "SOPInstanceUID" in dataset:
            meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.preamble = b"\x00" * 128
    return dataset, sorted(removed)


def write_dicom(dataset: Dataset, target: BinaryIO | str | Path) -> None:
    """Write ``dataset`` as a DICOM Part 10 file, keeping its transfer syntax."""
    dataset.save_as(target, enforce_file_format=True)
