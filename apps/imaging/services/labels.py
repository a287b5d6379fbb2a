"""The class vocabulary of a lab and labels in bulk from a CSV (EGD-CXR's master sheet)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.imaging.models import DEFAULT_CLASSES, Image, ImageClass
from apps.labs.models import Lab, User
from apps.labs.roles import Action
from apps.labs.services import require_action

# --- Vocabulary ------------------------------------------------------------------------------


def image_class_defaults_ensure(*, lab: Lab) -> None:
    """Give ``lab`` the default classes (Normal, CHF, Pneumonia) if it has no class yet."""
    if ImageClass.objects.filter(lab=lab).exists():
        return
    ImageClass.objects.bulk_create(
        [ImageClass(lab=lab, name=name, position=i) for i, name in enumerate(DEFAULT_CLASSES)],
        ignore_conflicts=True,
    )


def vocabulary(lab: Lab) -> dict[str, str]:
    """``{lowercased name: name}`` of the lab's classes."""
    return {name.lower(): name for name in lab.image_classes.values_list("name", flat=True)}


def image_class_create(*, lab: Lab, actor: User, name: str) -> ImageClass:
    """Add a class to the lab's vocabulary (researchers and admins)."""
    require_action(user=actor, lab=lab, action=Action.WRITE)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A class needs a name."})
    if name.lower() in vocabulary(lab):
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


# --- Labels from a CSV -----------------------------------------------------------------------

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
    classes = vocabulary(lab)
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
        class_cols = {columns[c]: classes[c] for c in classes if c in columns}
        if label_col is None and not class_cols:
            raise ValidationError(
                {"file": f"{filename}: needs a 'label' column or one column per class "
                         f"({', '.join(classes.values())})."}
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
                label = classes.get(raw.lower()) if raw else ""
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
