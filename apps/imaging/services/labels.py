"""The class vocabulary of a lab and labels in bulk from a CSV (EGD-CXR's master sheet)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.imaging.models import DEFAULT_CLASSES, Image, ImageClass, UploadBatchFile
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
    if len(name) > 60:
        raise ValidationError({"name": "A class name has at most 60 characters."})
    if name.lower() in vocabulary(lab):
        raise ValidationError({"name": f"{lab.name} has a class named {name!r} already."})
    last = lab.image_classes.order_by("-position").values_list("position", flat=True).first()
    try:
        with transaction.atomic():
            return ImageClass.objects.create(lab=lab, name=name, position=(last or 0) + 1)
    except IntegrityError:
        raise ValidationError({"name": f"{lab.name} has a class named {name!r} already."}) from None


def image_class_rename(*, image_class: ImageClass, actor: User, name: str) -> ImageClass:
    """Rename a class, and the label of every image that carries it with it (researchers and
    admins). Uploads still waiting for their ingest keep their label too. Snapshots keep the
    names they froze."""
    lab = image_class.lab
    require_action(user=actor, lab=lab, action=Action.WRITE)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A class needs a name."})
    if len(name) > 60:
        raise ValidationError({"name": "A class name has at most 60 characters."})
    taken = ImageClass.objects.filter(lab=lab, name__iexact=name).exclude(pk=image_class.pk)
    if taken.exists():
        raise ValidationError({"name": f"{lab.name} has a class named {name!r} already."})
    old = image_class.name
    if name == old:
        return image_class
    try:
        with transaction.atomic():
            image_class.name = name
            image_class.save(update_fields=["name"])
            Image.objects.filter(lab=lab, label__iexact=old).update(label=name)
            UploadBatchFile.objects.filter(
                batch__lab=lab,
                status__in=[UploadBatchFile.Status.QUEUED, UploadBatchFile.Status.RUNNING],
                label__iexact=old,
            ).update(label=name)
    except IntegrityError:
        image_class.name = old
        raise ValidationError({"name": f"{lab.name} has a class named {name!r} already."}) from None
    return image_class


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
#
# Three steps, so that a page can show what an import will change before it changes anything:
# ``image_labels_parse_csv`` reads and checks the sheet (every bad line named),
# ``image_labels_plan`` matches it against the lab's images (what changes, what stays, which keys
# name no image), and ``image_labels_apply`` writes a plan. ``image_labels_preview_csv`` is the
# first two; ``image_labels_import_csv`` all three, the plan made again under a lock, in one
# transaction.

_TRUE = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", "", "-1", "-1.0", "nan"}
MAX_ERRORS = 20
KEYS_PER_QUERY = 900


@dataclass
class LabelImportReport:
    updated: int = 0
    unchanged: int = 0
    unknown_keys: list[str] = field(default_factory=list)
    rows: int = 0


@dataclass
class LabelSheet:
    """A checked label sheet: per key (its last line wins), the label ("" for none), the
    finding flags, and the line it came from."""

    filename: str
    labels: dict[str, tuple[str, dict[str, bool]]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    repeated: dict[str, list[int]] = field(default_factory=dict)  # key -> every line naming it


@dataclass
class LabelChange:
    image_id: int
    key: str
    line: int
    old_label: str
    new_label: str
    old_findings: dict[str, bool]
    new_findings: dict[str, bool]

    @property
    def findings_changed(self) -> dict[str, tuple[bool | None, bool]]:
        """``{flag: (before, after)}`` of the flags this change sets to another value."""
        return {
            name: (self.old_findings.get(name), value)
            for name, value in self.new_findings.items()
            if self.old_findings.get(name) != value
        }


@dataclass
class LabelImportPlan:
    """What applying a sheet would do to the lab's images, computed without writing."""

    filename: str
    rows: int
    changes: list[LabelChange]
    unchanged: int
    unknown_keys: list[str]
    repeated: dict[str, list[int]]

    @property
    def digest(self) -> str:
        """A hash of the changes: the same sheet over the same images gives the same."""
        text = json.dumps(
            [(c.image_id, c.new_label, sorted(c.new_findings.items())) for c in self.changes]
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _class_names(lab: Lab) -> dict[str, str]:
    """The lab's vocabulary, or the default classes that the import would give a lab without
    any (without writing them)."""
    return vocabulary(lab) or {name.lower(): name for name in DEFAULT_CLASSES}


def image_labels_parse_csv(
    *, lab: Lab, file: BinaryIO, filename: str, finding_columns: Iterable[str] = ()
) -> LabelSheet:
    """Read and check a label sheet (see :func:`image_labels_import_csv`); writes nothing.

    Raises:
        ValidationError: on ``file``, every bad line named with its line number and column
            (at most :data:`MAX_ERRORS`); on ``findings``, a finding column the sheet lacks.
    """
    classes = _class_names(lab)
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    sheet = LabelSheet(filename=filename)
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
        errors: list[str] = []
        for row in reader:
            line = reader.line_num
            key = (row.get(key_col) or "").strip()
            if not key:
                errors.append(f"line {line}, column {key_col!r}: no key")
                continue
            if label_col is not None:
                raw = (row.get(label_col) or "").strip()
                label = classes.get(raw.lower()) if raw else ""
                if label is None:
                    errors.append(
                        f"line {line}, column {label_col!r}: {raw!r} is not a class of {lab.name}"
                    )
                    continue
            else:
                chosen = []
                for col, name in class_cols.items():
                    value = (row.get(col) or "").strip().lower()
                    if value in _TRUE:
                        chosen.append(name)
                    elif value not in _FALSE:
                        errors.append(f"line {line}, column {col!r}: {value!r} is not 0 or 1")
                if len(chosen) > 1:
                    errors.append(f"line {line}: more than one class is set ({', '.join(chosen)})")
                    continue
                label = chosen[0] if chosen else ""
            flags = {}
            for col in finding_cols:
                value = (row.get(col) or "").strip().lower()
                if value not in _TRUE | _FALSE:
                    errors.append(f"line {line}, column {col!r}: {value!r} is not a flag (0/1)")
                flags[col] = value in _TRUE
            if key in sheet.lines:
                sheet.repeated.setdefault(key, [sheet.lines[key]]).append(line)
            sheet.labels[key] = (label, flags)
            sheet.lines[key] = line
            if len(errors) >= MAX_ERRORS:
                break
    except UnicodeDecodeError:
        raise ValidationError({"file": f"{filename}: is not UTF-8 text."}) from None
    except csv.Error as exc:
        raise ValidationError({"file": f"{filename}: is not a readable CSV ({exc})."}) from None
    finally:
        text.detach()
    if errors:
        raise ValidationError({"file": [f"{filename}: {e}" for e in errors]})
    return sheet


def image_labels_plan(*, lab: Lab, sheet: LabelSheet, lock: bool = False) -> LabelImportPlan:
    """Match a checked sheet against the lab's images: what would change; writes nothing.

    ``lock`` locks the images named (``select_for_update``), inside the caller's transaction.
    """
    keys = list(sheet.labels)
    by_key: dict[str, Image] = {}
    # In chunks: a long sheet's keys would pass the database's limit of query parameters.
    for start in range(0, len(keys), KEYS_PER_QUERY):
        images = Image.objects.filter(lab=lab, key__in=keys[start : start + KEYS_PER_QUERY]).only(
            "id", "key", "label", "findings"
        )
        if lock:
            images = images.select_for_update()
        by_key.update((image.key, image) for image in images)
    changes: list[LabelChange] = []
    unknown: list[str] = []
    unchanged = 0
    for key, (label, flags) in sheet.labels.items():
        image = by_key.get(key)
        if image is None:
            unknown.append(key)
            continue
        new_findings = {**image.findings, **flags} if flags else image.findings
        if image.label == label and new_findings == image.findings:
            unchanged += 1
            continue
        changes.append(
            LabelChange(
                image_id=image.pk,
                key=key,
                line=sheet.lines[key],
                old_label=image.label,
                new_label=label,
                old_findings=dict(image.findings),
                new_findings=new_findings,
            )  # fmt: skip
        )
    return LabelImportPlan(
        filename=sheet.filename, rows=len(sheet.labels), changes=changes, unchanged=unchanged,
        unknown_keys=unknown, repeated=sheet.repeated,
    )  # fmt: skip


def image_labels_preview_csv(
    *, lab: Lab, actor: User, file: BinaryIO, filename: str, finding_columns: Iterable[str] = ()
) -> LabelImportPlan:
    """What :func:`image_labels_import_csv` would do with this sheet, without writing anything
    (researchers and admins: it is the first step of a write)."""
    require_action(user=actor, lab=lab, action=Action.WRITE)
    sheet = image_labels_parse_csv(
        lab=lab, file=file, filename=filename, finding_columns=finding_columns
    )
    return image_labels_plan(lab=lab, sheet=sheet)


class LabelPlanChanged(Exception):
    """The lab's images changed since the preview: the plan now is ``plan``; nothing written."""

    def __init__(self, plan: LabelImportPlan):
        super().__init__("The images changed since the preview; check the changes again.")
        self.plan = plan


def image_labels_apply(*, lab: Lab, plan: LabelImportPlan) -> LabelImportReport:
    """Write a plan's changes (in the caller's transaction, over images it locked)."""
    ids = [c.image_id for c in plan.changes]
    images: dict[int, Image] = {}
    for start in range(0, len(ids), KEYS_PER_QUERY):
        images.update(Image.objects.filter(lab=lab).in_bulk(ids[start : start + KEYS_PER_QUERY]))
    changed = []
    for change in plan.changes:
        image = images[change.image_id]
        image.label, image.findings = change.new_label, change.new_findings
        changed.append(image)
    Image.objects.bulk_update(changed, ["label", "findings"], batch_size=500)
    return LabelImportReport(
        updated=len(changed), unchanged=plan.unchanged, unknown_keys=plan.unknown_keys,
        rows=plan.rows,
    )  # fmt: skip


def image_labels_import_csv(
    *,
    lab: Lab,
    actor: User,
    file: BinaryIO,
    filename: str,
    finding_columns: Iterable[str] = (),
    expected_digest: str | None = None,
) -> LabelImportReport:
    """Set labels (and optional finding flags) in bulk from a CSV.

    The key column is ``key`` or ``dicom_id``. The label comes from a ``label`` column, or from
    one-hot columns named after the lab's classes (EGD-CXR's ``master_sheet.csv``: ``Normal``,
    ``CHF``, ``pneumonia``; matched case-insensitively) with exactly one of them set per row.
    ``finding_columns`` name further columns stored as finding flags (1/true/yes is true).

    All or nothing: any bad row is reported with its line number (and column) and no label
    changes. Keys that name no image of the lab are skipped and listed (a sheet may cover more
    images). With ``expected_digest`` (a preview's :attr:`LabelImportPlan.digest`), the import
    raises :class:`LabelPlanChanged` and writes nothing if it would now change other images or
    other values than that preview showed.
    """
    require_action(user=actor, lab=lab, action=Action.WRITE)
    sheet = image_labels_parse_csv(
        lab=lab, file=file, filename=filename, finding_columns=finding_columns
    )
    with transaction.atomic():
        image_class_defaults_ensure(lab=lab)
        plan = image_labels_plan(lab=lab, sheet=sheet, lock=True)
        if expected_digest is not None and plan.digest != expected_digest:
            raise LabelPlanChanged(plan)
        return image_labels_apply(lab=lab, plan=plan)
