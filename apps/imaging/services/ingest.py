"""Ingest of one image file (DICOM, PNG or JPEG): check, decode, de-identify, store.

Each file is checked, decoded and de-identified in memory before anything is written; its files
are then written at content-addressed paths and its row saved in one transaction. If the row
cannot be saved, the files this ingest wrote are deleted again, so a rejected file leaves
neither row nor file behind. The original upload is never stored.

Stored per image: the de-identified DICOM, a preview PNG, a thumbnail PNG, and for a PNG or JPEG
the display pixels as a 16-bit PNG. A DICOM's float array is not stored: it is decoded from the
de-identified DICOM when asked for (see ``pixels.py``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core import quota
from apps.core.errors import QuotaExceeded
from apps.core.storage import FileBatch, spooled_temp
from apps.imaging.models import DeidentificationAudit, Image, LabImagingKey
from apps.imaging.services.labels import vocabulary
from apps.imaging.services.pixels import array_png
from apps.labs.models import Lab, User
from ml import imaging

log = logging.getLogger(__name__)

_EXTENSIONS = {
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".zip": "zip",
}
_FORMAT_NAMES = {"dicom": "DICOM file", "png": "PNG image", "jpeg": "JPEG image", "zip": "zip"}
THUMBNAIL_SIDE = 256


class ImageRejected(Exception):
    """A file cannot be ingested; ``message`` says why and names the file."""

    def __init__(self, filename: str, reason: str, *, too_large: bool = False):
        self.filename = filename
        self.reason = reason
        self.too_large = too_large
        super().__init__(f"{filename}: {reason}")

    @property
    def message(self) -> str:
        return f"{self.filename}: {self.reason}"


@dataclass
class IngestResult:
    """What became of one uploaded file (or one file inside an uploaded zip)."""

    filename: str
    status: str  # "created", "duplicate" or "rejected"
    message: str = ""
    image: Image | None = None
    too_large: bool = False

    @property
    def ok(self) -> bool:
        return self.status != "rejected"

    @classmethod
    def rejected(cls, exc: ImageRejected) -> IngestResult:
        return cls(exc.filename, "rejected", exc.message, too_large=exc.too_large)


def _lab_key(lab: Lab) -> bytes:
    row = LabImagingKey.objects.filter(lab=lab).first()
    if row is None:
        try:
            with transaction.atomic():
                row = LabImagingKey.objects.create(lab=lab, secret=secrets.token_hex(32))
        except IntegrityError:  # created at the same moment by another upload
            row = LabImagingKey.objects.get(lab=lab)
    return bytes.fromhex(row.secret)


def check_name_and_kind(filename: str, kind: str | None) -> str:
    """``kind`` (sniffed from the content) when the file's extension agrees with it."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    expected = _EXTENSIONS.get(suffix)
    if kind is None:
        if expected:
            raise ImageRejected(
                filename, f"is named {suffix} but is not a {_FORMAT_NAMES[expected]}."
            )
        raise ImageRejected(
            filename, "is not a DICOM file (Part 10, with the DICM marker), PNG, JPEG or zip."
        )
    if expected and expected != kind:
        raise ImageRejected(
            filename, f"is a {_FORMAT_NAMES[kind]} but is named {suffix}; rename it and retry."
        )
    return kind


def check_size(filename: str, size: int) -> None:
    """Refuse an empty file or one over ``UPLOAD_MAX_BYTES`` (nothing needs to be read)."""
    if size == 0:
        raise ImageRejected(filename, "is empty.")
    if size > settings.UPLOAD_MAX_BYTES:
        raise ImageRejected(
            filename,
            f"is {size:,} bytes, over the limit of {settings.UPLOAD_MAX_BYTES:,} bytes.",
            too_large=True,
        )


def _key_for(filename: str, key: str | None) -> str:
    key = (key or "").strip() or imaging.key_from_filename(filename)
    if not key:
        raise ImageRejected(filename, "has no usable name for a key; give a key.")
    if len(key) > 200:
        raise ImageRejected(filename, "gives a key longer than 200 characters.")
    return key


def _label_for(lab: Lab, filename: str, label: str) -> str:
    if not label:
        return ""
    name = vocabulary(lab).get(label.strip().lower())
    if name is None:
        raise ImageRejected(
            filename, f"names the label {label!r}, which is not a class of the lab."
        )
    return name


def _duplicate(filename: str, twin: Image) -> IngestResult:
    return IngestResult(
        filename, "duplicate",
        f"{filename}: the same image is in the lab already, as {twin.key!r}; not stored twice.",
        image=twin,
    )  # fmt: skip


def image_ingest(
    *,
    lab: Lab,
    uploaded_by: User | None,
    file: BinaryIO,
    filename: str,
    size: int,
    key: str | None = None,
    label: str = "",
) -> IngestResult:
    """Ingest one image file (DICOM, PNG or JPEG) into ``lab``.

    Returns a result whose status is ``created`` or ``duplicate`` (the same pixels are in the
    lab already: nothing is stored twice). Raises ``ImageRejected`` for a file that cannot be
    used; then nothing of it is stored. The caller checks the uploader's role.
    """
    check_size(filename, size)
    file.seek(0)
    kind = check_name_and_kind(filename, imaging.sniff_format(file))
    if kind == "zip":
        raise ImageRejected(filename, "is a zip inside a zip; upload the inner zip by itself.")
    key = _key_for(filename, key)
    label = _label_for(lab, filename, label)

    dataset = None
    try:
        if kind == "dicom":
            dataset = imaging.load_dicom(file)
            stored, array, meta = imaging.dicom_pixels(dataset)
            meta["pixel_sha256"] = imaging.pixel_sha256(stored)
            del stored
        else:
            array, meta = imaging.read_raster(file)
    except imaging.ImageError as exc:
        raise ImageRejected(filename, str(exc)) from None

    existing = Image.objects.filter(lab=lab, pixel_sha256=meta["pixel_sha256"]).first()
    if existing is not None:
        return _duplicate(filename, existing)
    if Image.objects.filter(lab=lab, key=key).exists():
        raise ImageRejected(filename, f"the key {key!r} is already used by another image.")

    removed: list[str] = []
    patient = ""
    files = FileBatch(app="imaging", lab_id=lab.pk)
    try:
        paths = {}
        if dataset is not None:
            # The pseudonymous patient key comes from the PatientID that de-identification removes.
            lab_key = _lab_key(lab)
            patient = imaging.patient_key(dataset, lab_key=lab_key)
            dataset, removed = imaging.deidentify(dataset, lab_key=lab_key)
            with spooled_temp() as out:
                imaging.write_dicom(dataset, out)
                paths["dicom"] = files.put(kind="dicom", ext="dcm", fh=out)
            del dataset
            # The de-identified DICOM keeps the pixels and every attribute the display array
            # is computed from: the array is decoded from it when asked for, never stored.
            paths["array"] = paths["dicom"]
        max_side = settings.IMAGING_PREVIEW_MAX_SIDE
        derived = {
            kind_name: io.BytesIO(imaging.render_preview(array, max_side=side))
            for kind_name, side in (("preview", max_side), ("thumbnail", THUMBNAIL_SIDE))
        }
        with contextlib.ExitStack() as stack:
            if "array" not in paths:  # a PNG or JPEG: its pixels as a 16-bit PNG
                derived["array"] = stack.enter_context(array_png(array))
            sizes = {k: fh.seek(0, io.SEEK_END) for k, fh in derived.items()}
            try:
                quota.check(lab=lab, adding=sum(sizes.values()), what="this image's previews")
            except QuotaExceeded as exc:
                raise ImageRejected(filename, str(exc)) from None
            for kind_name, fh in derived.items():
                fh.seek(0)
                paths[kind_name] = files.put(kind=kind_name, ext="png", fh=fh)
        del array, derived
        spacing = meta["pixel_spacing"] or [None, None]
        with transaction.atomic():
            image = Image.objects.create(
                lab=lab,
                key=key,
                label=label,
                source_format=meta["format"],
                width=meta["width"],
                height=meta["height"],
                pixel_spacing_row=spacing[0],
                pixel_spacing_col=spacing[1] if len(spacing) > 1 else spacing[0],
                view_position=meta["view_position"][:16],
                photometric_interpretation=meta["photometric_interpretation"],
                bits_stored=meta["bits_stored"],
                metadata={
                    k: meta[k]
                    for k in (
                        "modality",
                        "transfer_syntax",
                        "transfer_syntax_name",
                        "voi",
                        "window_center",
                        "window_width",
                        "bits_allocated",
                    )
                },  # fmt: skip
                pixel_sha256=meta["pixel_sha256"],
                dicom_path=paths.get("dicom", ""),
                preview_path=paths["preview"],
                thumbnail_path=paths["thumbnail"],
                array_path=paths["array"],
                derived_bytes=sum(sizes.values()),
                burned_in_annotation=meta["burned_in_annotation"],
                patient_key=patient,
                uploaded_by=uploaded_by,
            )
            if kind == "dicom":
                DeidentificationAudit.objects.create(
                    lab=lab,
                    image=image,
                    image_key=key,
                    method=imaging.DEIDENTIFICATION_METHOD,
                    removed_attributes=removed,
                    performed_by=uploaded_by,
                )
    except IntegrityError:
        files.discard()
        # Another upload stored the same pixels or key a moment ago.
        twin = Image.objects.filter(lab=lab, pixel_sha256=meta["pixel_sha256"]).first()
        if twin is not None:
            return _duplicate(filename, twin)
        raise ImageRejected(
            filename, f"the key {key!r} is already used by another image."
        ) from None
    except imaging.ImageError as exc:
        files.discard()
        raise ImageRejected(filename, str(exc)) from None
    except BaseException:
        files.discard()
        raise
    note = " Burned-in annotation: review before sharing." if image.burned_in_annotation else ""
    return IngestResult(filename, "created", f"{filename}: stored as {key!r}.{note}", image=image)
