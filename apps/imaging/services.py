"""Writes of the imaging app: ingest (one file, many files, a zip), labels, classes, delete.

Each uploaded file is checked, decoded and de-identified in memory before anything is written;
its files are then written at content-addressed paths and its row saved in one transaction. If
the row cannot be saved, the files this ingest wrote are deleted again, so a rejected file
leaves neither row nor file behind. The original upload is never stored.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.core import storage
from apps.core.storage import FileBatch, spooled_temp
from apps.core.uploads import Upload
from apps.imaging.models import (
    DEFAULT_CLASSES,
    DeidentificationAudit,
    Image,
    ImageClass,
    LabImagingKey,
)
from apps.labs.models import Lab, User
from apps.labs.roles import Action
from apps.labs.services import require_action
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


# --- Vocabulary ------------------------------------------------------------------------------


def image_class_defaults_ensure(*, lab: Lab) -> None:
    """Give ``lab`` the default classes (Normal, CHF, Pneumonia) if it has no class yet."""
    if ImageClass.objects.filter(lab=lab).exists():
        return
    ImageClass.objects.bulk_create(
        [ImageClass(lab=lab, name=name, position=i) for i, name in enumerate(DEFAULT_CLASSES)],
        ignore_conflicts=True,
    )


def _vocabulary(lab: Lab) -> dict[str, str]:
    """``{lowercased name: name}`` of the lab's classes."""
    return {name.lower(): name for name in lab.image_classes.values_list("name", flat=True)}


def image_class_create(*, lab: Lab, actor: User, name: str) -> ImageClass:
    """Add a class to the lab's vocabulary (researchers and admins)."""
    require_action(user=actor, lab=lab, action=Action.WRITE)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A class needs a name."})
    if name.lower() in _vocabulary(lab):
        raise ValidationError({"name": f"{lab.name} has a class named {name!r} already."})
    last = lab.image_classes.order_by("-position").values_list("position", flat=True).first()
    try:
        with transaction.atomic():
            return ImageClass.objects.create(lab=lab, name=name, position=(last or 0) + 1)
    except IntegrityError:
        raise ValidationError({"name": f"{lab.name} has a class named {name!r} already."}) from None


def image_class_delete(*, image_class: ImageClass, actor: User) -> None:
    """Remove a class no image carries (researchers and admins)."""
    require_action(user=actor, lab=image_class.lab, action=Action.WRITE)
    used = Image.objects.filter(lab=image_class.lab, label__iexact=image_class.name).count()
    if used:
        raise ValidationError(
            {"name": f"{used} image(s) carry the label {image_class.name!r}; relabel them first."}
        )
    image_class.delete()


# --- Ingest ----------------------------------------------------------------------------------


def _lab_key(lab: Lab) -> bytes:
    row = LabImagingKey.objects.filter(lab=lab).first()
    if row is None:
        try:
            with transaction.atomic():
                row = LabImagingKey.objects.create(lab=lab, secret=secrets.token_hex(32))
        except IntegrityError:  # created at the same moment by another upload
            row = LabImagingKey.objects.get(lab=lab)
    return bytes.fromhex(row.secret)


def _check_name_and_kind(filename: str, kind: str | None) -> str:
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


def _npy(array: np.ndarray) -> BinaryIO:
    out = spooled_temp()
    np.save(out, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    out.seek(0)
    return out


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
    name = _vocabulary(lab).get(label.strip().lower())
    if name is None:
        raise ImageRejected(
            filename, f"names the label {label!r}, which is not a class of the lab."
        )
    return name


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
    if size == 0:
        raise ImageRejected(filename, "is empty.")
    if size > settings.UPLOAD_MAX_BYTES:
        raise ImageRejected(
            filename,
            f"is {size:,} bytes, over the limit of {settings.UPLOAD_MAX_BYTES:,} bytes.",
            too_large=True,
        )
    file.seek(0)
    kind = _check_name_and_kind(filename, imaging.sniff_format(file))
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
        return IngestResult(
            filename, "duplicate", f"{filename}: the same image is in the lab already, as "
            f"{existing.key!r}; not stored twice.", image=existing,
        )  # fmt: skip
    if Image.objects.filter(lab=lab, key=key).exists():
        raise ImageRejected(filename, f"the key {key!r} is already used by another image.")

    removed: list[str] = []
    files = FileBatch(app="imaging", lab_id=lab.pk)
    try:
        paths = {}
        if dataset is not None:
            dataset, removed = imaging.deidentify(dataset, lab_key=_lab_key(lab))
            with spooled_temp() as out:
                imaging.write_dicom(dataset, out)
                paths["dicom"] = files.put(kind="dicom", ext="dcm", fh=out)
            del dataset
        max_side = settings.IMAGING_PREVIEW_MAX_SIDE
        for kind_name, side in (("preview", max_side), ("thumbnail", 256)):
            png = io.BytesIO(imaging.render_preview(array, max_side=side))
            paths[kind_name] = files.put(kind=kind_name, ext="png", fh=png)
        with _npy(array) as npy:
            paths["array"] = files.put(kind="array", ext="npy", fh=npy)
        del array
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
                burned_in_annotation=meta["burned_in_annotation"],
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
            return IngestResult(
                filename, "duplicate", f"{filename}: the same image is in the lab already, as "
                f"{twin.key!r}; not stored twice.", image=twin,
            )  # fmt: skip
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


# --- Many files and zips ---------------------------------------------------------------------


def _safe_member_name(archive: str, name: str) -> str:
    normalised = name.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if (
        normalised.startswith("/")
        or (len(normalised) > 1 and normalised[1] == ":")
        or ".." in parts
        or "\x00" in normalised
    ):
        raise ImageRejected(
            archive, f"contains the unsafe path {name!r} (absolute or with '..'); nothing stored."
        )
    return normalised


def _zip_members(archive: str, fh: BinaryIO) -> Iterator[tuple[zipfile.ZipFile, zipfile.ZipInfo]]:
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImageRejected(archive, f"is not a readable zip archive ({exc}).") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > settings.IMAGING_ZIP_MAX_FILES:
            raise ImageRejected(
                archive, f"holds {len(infos):,} entries; at most "
                f"{settings.IMAGING_ZIP_MAX_FILES:,} are accepted.",
            )  # fmt: skip
        total = 0
        members = []
        for info in infos:
            name = _safe_member_name(archive, info.filename)
            if info.is_dir():
                continue
            base = PurePosixPath(name).name
            if name.startswith("__MACOSX/") or base.startswith(".") or not base:
                continue
            if info.flag_bits & 0x1:
                raise ImageRejected(archive, f"has the encrypted entry {name!r}.")
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1_000_000 and ratio > settings.IMAGING_ZIP_MAX_RATIO:
                raise ImageRejected(
                    archive, f"entry {name!r} expands {ratio:,.0f} times (at most "
                    f"{settings.IMAGING_ZIP_MAX_RATIO}); refused as a possible zip bomb.",
                )  # fmt: skip
            if total > settings.IMAGING_ZIP_MAX_BYTES:
                raise ImageRejected(
                    archive, f"expands to more than {settings.IMAGING_ZIP_MAX_BYTES:,} bytes; "
                    "refused as a possible zip bomb.",
                )  # fmt: skip
            members.append(info)
        if not members:
            raise ImageRejected(archive, "holds no files.")
        for info in members:
            yield zf, info


def _extract(archive: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> BinaryIO:
    """Copy one entry to a temporary file, never more bytes than its header declares."""
    limit = min(info.file_size, settings.UPLOAD_MAX_BYTES)
    out = spooled_temp()
    try:
        with zf.open(info) as src:
            copied = 0
            for chunk in iter(lambda: src.read(1024 * 1024), b""):
                copied += len(chunk)
                if copied > limit:
                    raise ImageRejected(
                        f"{archive}/{info.filename}", "expands beyond its declared size."
                    )
                out.write(chunk)
    except ImageRejected:
        out.close()
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        out.close()
        raise ImageRejected(f"{archive}/{info.filename}", f"cannot be extracted ({exc}).") from None
    out.seek(0)
    return out


def image_upload_batch(
    *, lab: Lab, uploaded_by: User, uploads: Iterable[Upload]
) -> list[IngestResult]:
    """Ingest many files (each DICOM, PNG, JPEG or a zip of them) into ``lab``: one result each.

    Each file is ingested in its own transaction: a bad file is reported and skipped, the
    others are stored. A zip with an unsafe entry name, too many entries, or entries that
    expand too much (a zip bomb) is refused whole before any of its entries is read.
    """
    require_action(user=uploaded_by, lab=lab, action=Action.WRITE)
    image_class_defaults_ensure(lab=lab)
    results: list[IngestResult] = []
    for upload in uploads:
        results.extend(_ingest_upload(lab=lab, uploaded_by=uploaded_by, upload=upload))
    return results


def _reject(exc: ImageRejected) -> IngestResult:
    return IngestResult(exc.filename, "rejected", exc.message, too_large=exc.too_large)


def _ingest_upload(*, lab: Lab, uploaded_by: User, upload: Upload) -> list[IngestResult]:
    try:
        upload.file.seek(0)
        is_zip = upload.size > 0 and imaging.sniff_format(upload.file) == "zip"
        if is_zip and upload.size > settings.UPLOAD_MAX_BYTES:
            raise ImageRejected(
                upload.filename,
                f"is {upload.size:,} bytes, over the limit of {settings.UPLOAD_MAX_BYTES:,} bytes.",
                too_large=True,
            )
        if is_zip:
            _check_name_and_kind(upload.filename, "zip")
        else:
            return [
                image_ingest(
                    lab=lab,
                    uploaded_by=uploaded_by,
                    file=upload.file,
                    filename=upload.filename,
                    size=upload.size,
                    key=upload.key,
                    label=upload.label,
                )  # fmt: skip
            ]
    except ImageRejected as exc:
        return [_reject(exc)]
    # _zip_members checks every entry's name and sizes before it yields the first one.
    results = []
    try:
        for zf, info in _zip_members(upload.filename, upload.file):
            name = f"{upload.filename}/{info.filename}"
            try:
                with _extract(upload.filename, zf, info) as entry:
                    results.append(
                        image_ingest(
                            lab=lab,
                            uploaded_by=uploaded_by,
                            file=entry,
                            filename=name,
                            size=info.file_size,
                            label=upload.label,
                        )  # fmt: skip
                    )
            except ImageRejected as exc:
                results.append(_reject(exc))
    except ImageRejected as exc:  # the archive itself, found damaged while reading it
        results.append(_reject(exc))
    return results


# --- Labels ----------------------------------------------------------------------------------


def _clean_findings(findings: dict) -> dict[str, bool]:
    if not isinstance(findings, dict):
        raise ValidationError({"findings": "Give finding flags as an object of name: true/false."})
    clean = {}
    for name, value in findings.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise ValidationError({"findings": f"{name!r} is not a finding name (1-60 chars)."})
        if not isinstance(value, bool):
            raise ValidationError({"findings": f"{name}: give true or false, not {value!r}."})
        clean[name.strip()] = value
    if len(clean) > 100:
        raise ValidationError({"findings": "At most 100 finding flags per image."})
    return clean


def image_update(
    *,
    image: Image,
    actor: User,
    label: str | None = None,
    findings: dict | None = None,
    key: str | None = None,
) -> Image:
    """Change an image's label (a class of its lab, or "" for none), finding flags or key."""
    require_action(user=actor, lab=image.lab, action=Action.WRITE)
    fields = []
    if label is not None:
        if label.strip():
            name = _vocabulary(image.lab).get(label.strip().lower())
            if name is None:
                classes = ", ".join(_vocabulary(image.lab).values())
                raise ValidationError(
                    {"label": f"{label!r} is not a class of {image.lab.name} ({classes})."}
                )
            image.label = name
        else:
            image.label = ""
        fields.append("label")
    if findings is not None:
        image.findings = _clean_findings(findings)
        fields.append("findings")
    if key is not None:
        key = key.strip()
        if not key:
            raise ValidationError({"key": "A key cannot be empty."})
        if Image.objects.filter(lab=image.lab, key=key).exclude(pk=image.pk).exists():
            raise ValidationError({"key": f"The key {key!r} is already used by another image."})
        image.key = key
        fields.append("key")
    if fields:
        try:
            with transaction.atomic():
                image.save(update_fields=fields)
        except IntegrityError:
            raise ValidationError({"key": f"The key {key!r} is already used."}) from None
    return image


_TRUE = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", "", "-1", "-1.0", "nan"}


@dataclass
class LabelImportReport:
    updated: int = 0
    unchanged: int = 0
    unknown_keys: list[str] = field(default_factory=list)
    rows: int = 0


def image_labels_import_csv(
    *, lab: Lab, actor: User, file: BinaryIO, filename: str, finding_columns: Iterable[str] = ()
) -> LabelImportReport:
    """Set labels (and optional finding flags) in bulk from a CSV.

    The key column is ``key`` or ``dicom_id``. The label comes from a ``label`` column, or from
    one-hot columns named after the lab's classes (EGD-CXR's ``master_sheet.csv``: ``Normal``,
    ``CHF``, ``pneumonia``; matched case-insensitively) with exactly one of them set per row.
    ``finding_columns`` name further columns stored as finding flags (1/true/yes is true).

    All or nothing: any bad row is reported with its line number and no label changes. Keys
    that name no image of the lab are skipped and listed (a sheet may cover more images).
    """
    require_action(user=actor, lab=lab, action=Action.WRITE)
    image_class_defaults_ensure(lab=lab)
    vocabulary = _vocabulary(lab)
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        reader = csv.DictReader(text)
        header = reader.fieldnames or []
        columns = {name.strip().lower(): name for name in header if name}
        key_col = columns.get("key") or columns.get("dicom_id")
        if key_col is None:
            raise ValidationError({"file": f"{filename}: needs a 'key' or 'dicom_id' column."})
        label_col = columns.get("label")
        class_cols = {columns[c]: vocabulary[c] for c in vocabulary if c in columns}
        if label_col is None and not class_cols:
            raise ValidationError(
                {"file": f"{filename}: needs a 'label' column or one column per class "
                         f"({', '.join(vocabulary.values())})."}
            )  # fmt: skip
        finding_cols = []
        for wanted in finding_columns:
            col = columns.get(wanted.strip().lower())
            if col is None:
                raise ValidationError({"findings": f"{filename} has no column {wanted!r}."})
            finding_cols.append(col)
        wanted_labels: dict[str, tuple[str, dict]] = {}
        errors: list[str] = []
        for row in reader:
            line = reader.line_num
            key = (row.get(key_col) or "").strip()
            if not key:
                errors.append(f"line {line}: no key")
                continue
            if label_col is not None:
                raw = (row.get(label_col) or "").strip()
                label = vocabulary.get(raw.lower()) if raw else ""
                if label is None:
                    errors.append(f"line {line}: {raw!r} is not a class of {lab.name}")
                    continue
            else:
                chosen = []
                for col, name in class_cols.items():
                    value = (row.get(col) or "").strip().lower()
                    if value in _TRUE:
                        chosen.append(name)
                    elif value not in _FALSE:
                        errors.append(f"line {line}: {col}={value!r} is not 0 or 1")
                if len(chosen) > 1:
                    errors.append(f"line {line}: more than one class is set ({', '.join(chosen)})")
                    continue
                label = chosen[0] if chosen else ""
            flags = {}
            for col in finding_cols:
                value = (row.get(col) or "").strip().lower()
                if value not in _TRUE | _FALSE:
                    errors.append(f"line {line}: {col}={value!r} is not a flag (0/1)")
                flags[col] = value in _TRUE
            wanted_labels[key] = (label, flags)
            if len(errors) >= 20:
                break
    except UnicodeDecodeError:
        raise ValidationError({"file": f"{filename}: is not UTF-8 text."}) from None
    except csv.Error as exc:
        raise ValidationError({"file": f"{filename}: is not a readable CSV ({exc})."}) from None
    finally:
        text.detach()
    if errors:
        raise ValidationError({"file": [f"{filename}: {e}" for e in errors]})
    report = LabelImportReport(rows=len(wanted_labels))
    with transaction.atomic():
        images = {
            image.key: image
            for image in Image.objects.select_for_update().filter(lab=lab, key__in=wanted_labels)
        }
        changed = []
        for key, (label, flags) in wanted_labels.items():
            image = images.get(key)
            if image is None:
                report.unknown_keys.append(key)
                continue
            new_findings = {**image.findings, **flags} if flags else image.findings
            if image.label == label and new_findings == image.findings:
                report.unchanged += 1
                continue
            image.label, image.findings = label, new_findings
            changed.append(image)
        Image.objects.bulk_update(changed, ["label", "findings"], batch_size=500)
        report.updated = len(changed)
    return report


# --- Delete ----------------------------------------------------------------------------------


def image_delete(*, image: Image, actor: User) -> None:
    """Delete an image and, once the deletion is committed, its files no other row names."""
    require_action(user=actor, lab=image.lab, action=Action.WRITE)
    paths = image.file_paths
    lab_id = image.lab_id
    with transaction.atomic():
        image.delete()

        def _delete_files():
            from django.db.models import Q

            for path in paths:
                named = Q(dicom_path=path) | Q(preview_path=path) | Q(thumbnail_path=path)
                if not Image.objects.filter(named | Q(array_path=path), lab_id=lab_id).exists():
                    storage.delete(path)

        transaction.on_commit(_delete_files)


__all__ = [
    "ImageRejected",
    "IngestResult",
    "LabelImportReport",
    "Upload",
    "image_class_create",
    "image_class_defaults_ensure",
    "image_class_delete",
    "image_delete",
    "image_ingest",
    "image_labels_import_csv",
    "image_update",
    "image_upload_batch",
]
