"""Snapshot choices: cleaning them, selecting images and readings, the split, the refusals of
what could not train, and creating the queued snapshot."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.core import quota
from apps.datasets.models import DatasetSnapshot, SnapshotItem
from apps.gaze.models import Fixation, Reader, Reading, ReadingSession
from apps.imaging.models import Image, ImageClass
from apps.labs.models import Lab, User
from ml.data.splits import SPLITS, original_split, patient_split

log = logging.getLogger(__name__)


APP = "datasets"
DEFAULT_RESOLUTION = (640, 512)
GRADES = ("good", "usable", "poor")  # best first
SPLIT_RULES = ("original", "patient")
MAX_SIDE = 2048
# The sampling rate assumed for a session that states none, in seed mode (EGD-CXR's 1000 Hz).
SEED_DEFAULT_RATE_HZ = 1000.0
# A build whose heartbeat is older than this may be deleted (its worker is gone).
STALE_BUILD_S = 600


class SnapshotBuildError(Exception):
    """A build cannot go on; the message says why, in the lab's terms."""


# --- Choices ----------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def _date(field: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise _invalid(field, f"{value!r} is not a date (YYYY-MM-DD).") from None


def snapshot_choices_clean(
    *,
    lab: Lab,
    labels: list[str] | None = None,
    readers: list[str] | None = None,
    sessions: list[int] | None = None,
    min_grade: str = "usable",
    use_for_training_only: bool = True,
    uploaded_after: Any = None,
    uploaded_before: Any = None,
    resolution: list[int] | tuple[int, int] | None = None,
    sigma_deg: float = 1.0,
    target_reader: str | None = None,
    seed_mode: bool = False,
    split: str = "original",
    seed: int = 0,
) -> dict[str, Any]:
    """The choices of a snapshot, checked and normalised (what ``choices`` stores).

    Raises:
        ValidationError: naming the field at fault.
    """
    classes = list(ImageClass.objects.filter(lab=lab).values_list("name", flat=True))
    by_lower = {c.lower(): c for c in classes}
    if labels is None or len(labels) == 0:
        chosen = classes
    else:
        unknown = [name for name in labels if str(name).lower() not in by_lower]
        if unknown:
            raise _invalid(
                "labels", f"Not a class of the lab: {', '.join(map(repr, unknown))} "
                f"(the lab's classes: {', '.join(classes)})."
            )  # fmt: skip
        wanted = {str(name).lower() for name in labels}
        chosen = [c for c in classes if c.lower() in wanted]  # the lab's order
    if not chosen:
        raise _invalid("labels", "The lab has no classes: add some first.")

    reader_codes = sorted({str(c) for c in readers or []})
    known = set(
        Reader.objects.filter(lab=lab, code__in=reader_codes).values_list("code", flat=True)
    )
    missing = [c for c in reader_codes if c not in known]
    if missing:
        raise _invalid("readers", f"No reader of the lab has the code {missing[0]!r}.")
    session_ids = sorted({int(s) for s in sessions or []})
    found = set(
        ReadingSession.objects.filter(lab=lab, pk__in=session_ids).values_list("pk", flat=True)
    )
    missing_s = [s for s in session_ids if s not in found]
    if missing_s:
        raise _invalid("sessions", f"No session of the lab has the id {missing_s[0]}.")
    if min_grade not in GRADES:
        raise _invalid("min_grade", f"Must be one of {', '.join(GRADES)}.")
    after = _date("uploaded_after", uploaded_after)
    before = _date("uploaded_before", uploaded_before)
    if after and before and after > before:
        raise _invalid("uploaded_before", "Is before uploaded_after.")

    height, width = resolution or DEFAULT_RESOLUTION
    for field_value in (height, width):
        if not (16 <= int(field_value) <= MAX_SIDE and int(field_value) % 16 == 0):
            raise _invalid(
                "resolution",
                f"Height and width must be multiples of 16 from 16 to {MAX_SIDE} (MT-UNet "
                f"halves the size four times); {height} x {width} was asked for.",
            )
    sigma_deg = float(sigma_deg)
    if not 0.1 <= sigma_deg <= 10.0:
        raise _invalid("sigma_deg", "Must be 0.1 to 10 degrees of visual angle.")
    if seed_mode and sigma_deg != 1.0:
        raise _invalid(
            "sigma_deg",
            "The seed mode reproduces the original targets (a 501-px blur of raw samples); "
            "sigma in degrees does not apply to it: leave it at 1.",
        )
    if target_reader in ("",):
        target_reader = None
    if target_reader is not None:
        target_reader = str(target_reader)
        if not Reader.objects.filter(lab=lab, code=target_reader).exists():
            raise _invalid("target_reader", f"No reader of the lab has the code {target_reader!r}.")
        if reader_codes and target_reader not in reader_codes:
            raise _invalid("target_reader", "Is not among the readers chosen.")
    if split not in SPLIT_RULES:
        raise _invalid("split", f"Must be one of {', '.join(SPLIT_RULES)}.")
    seed = int(seed)
    if not 0 <= seed < 2**31:
        raise _invalid("seed", "Must be 0 to 2147483647.")
    return {
        "labels": chosen,
        "readers": reader_codes,
        "sessions": session_ids,
        "min_grade": min_grade,
        "use_for_training_only": bool(use_for_training_only),
        "uploaded_after": after,
        "uploaded_before": before,
        "resolution": [int(height), int(width)],
        "sigma_deg": sigma_deg,
        "target_reader": target_reader,
        "seed_mode": bool(seed_mode),
        "split": split,
        "seed": seed,
    }


# --- Selection and split ----------------------------------------------------------------------


def _selected_readings(lab: Lab, choices: dict[str, Any]):
    grades = GRADES[: GRADES.index(choices["min_grade"]) + 1]
    readings = Reading.objects.filter(lab=lab, grade__in=grades).filter(
        Exists(Fixation.objects.filter(reading=OuterRef("pk"), on_image=True))
    )
    if choices["use_for_training_only"]:
        readings = readings.filter(use_for_training=True)
    if choices["readers"]:
        readings = readings.filter(session__reader__code__in=choices["readers"])
    if choices["sessions"]:
        readings = readings.filter(session_id__in=choices["sessions"])
    return readings


def snapshot_select(*, lab: Lab, choices: dict[str, Any]) -> dict[str, Any]:
    """The images and readings ``choices`` select, their split, and what was left out.

    Returns:
        ``{"items": [{"image", "label", "label_index", "patient_key", "reading_ids",
        "split"}], "left_out": {reason: n}}``, items ordered by key.
    """
    classes = choices["labels"]
    index = {c.lower(): i for i, c in enumerate(classes)}
    images = Image.objects.filter(lab=lab)
    total = images.count()
    label_q = Q()
    for name in classes:
        label_q |= Q(label__iexact=name)
    images = images.filter(label_q)
    in_classes = images.count()
    if choices["uploaded_after"]:
        images = images.filter(created_at__date__gte=choices["uploaded_after"])
    if choices["uploaded_before"]:
        images = images.filter(created_at__date__lte=choices["uploaded_before"])
    in_dates = images.count()
    readings = _selected_readings(lab, choices).filter(image__in=images)
    by_image: dict[int, list[int]] = defaultdict(list)
    target_images: set[int] = set()
    for pk, image_id, code in readings.order_by("id").values_list(
        "pk", "image_id", "session__reader__code"
    ):
        by_image[image_id].append(pk)
        if choices["target_reader"] in (None, code):
            target_images.add(image_id)
    chosen = list(images.filter(pk__in=target_images).order_by("key"))
    items = [
        {
            "image": image,
            "label": classes[index[image.label.lower()]],
            "label_index": index[image.label.lower()],
            "patient_key": image.patient_key,
            "reading_ids": by_image[image.pk],
        }
        for image in chosen
    ]
    labels = [it["label_index"] for it in items]
    if choices["split"] == "patient":
        # An image without a patient key (PNG, JPEG, no PatientID) is its own patient.
        patients = [it["patient_key"] or f"image:{it['image'].key}" for it in items]
        splits = patient_split(labels, patients, seed=choices["seed"])
    else:
        splits = original_split(labels, seed=choices["seed"])
    for item, split in zip(items, splits, strict=True):
        item["split"] = split
    left_out = {
        "not_in_classes": total - in_classes,
        "outside_dates": in_classes - in_dates,
        "no_reading": in_dates - len(items),
    }
    return {"items": items, "left_out": left_out}


def _counts(items: list[dict[str, Any]], classes: list[str]) -> dict[str, dict[str, int]]:
    tally = Counter((it["split"], it["label"]) for it in items)
    return {s: {c: tally[(s, c)] for c in classes} for s in SPLITS}


def _refuse_untrainable(
    items: list[dict[str, Any]], classes: list[str], choices: dict[str, Any], left_out: dict
) -> None:
    """Refuse a selection that leaves a split empty or a class without a training image."""
    if not items:
        raise _invalid(
            "labels",
            f"No image matches these choices: of the lab's images, {left_out['not_in_classes']} "
            f"have no label among {', '.join(classes)}, {left_out['outside_dates']} were "
            f"uploaded outside the dates, and {left_out['no_reading']} have no reading that "
            "passes the reading filters (readers, sessions, grade, use for training"
            + (f", reader {choices['target_reader']}" if choices["target_reader"] else "")
            + ") with a fixation on the image.",
        )
    per_class = Counter(it["label"] for it in items)
    by = "patients" if choices["split"] == "patient" else "images"
    rule = (
        f"the 2/1/7 rule (by {by}) puts the first two {by} of each class in test, the third "
        "in validation, and train from the fourth on"
    )
    summary = ", ".join(f"{c} {per_class[c]}" for c in classes)
    counts = _counts(items, classes)
    names = {"train": "training", "val": "validation", "test": "test"}
    for split in SPLITS:
        if not sum(counts[split].values()):
            raise _invalid(
                "split",
                f"The {names[split]} split would be empty: {len(items)} image(s) were selected "
                f"({summary}), and {rule}. Add images or readings, or widen the filters.",
            )
    for name in classes:
        if not counts["train"][name]:
            raise _invalid(
                "labels",
                f"Class {name!r} has no training image: {per_class[name]} image(s) of it were "
                f"selected, and {rule}. Add {name} images with readings, or leave {name} out "
                "of the labels.",
            )


def _estimate_bytes(n_items: int, n_test: int, n_readers: int, resolution: list[int]) -> int:
    pixels = resolution[0] * resolution[1]
    return 4 * pixels * (2 * n_items + n_test * max(1, n_readers))


def snapshot_create(*, lab: Lab, actor: User | None, name: str, **choices: Any) -> DatasetSnapshot:
    """Check the choices, select and split, and store the snapshot queued; its build is
    enqueued on the ``default`` queue once the transaction commits.

    Raises:
        ValidationError: a bad choice (naming the field), nothing selected, an empty split or a
            class without a training image (saying what is missing).
        QuotaExceeded: the snapshot's arrays would pass the lab's quota of derived files.
    """
    enqueue = choices.pop("enqueue", True)
    name = (name or "").strip()
    if not name:
        raise _invalid("name", "Give the snapshot a name.")
    if len(name) > 200:
        raise _invalid("name", "Ensure this field has no more than 200 characters.")
    clean = snapshot_choices_clean(lab=lab, **choices)
    selected = snapshot_select(lab=lab, choices=clean)
    items, classes = selected["items"], clean["labels"]
    _refuse_untrainable(items, classes, clean, selected["left_out"])
    n_test = sum(it["split"] == "test" for it in items)
    n_readers = len(set(clean["readers"])) or Reader.objects.filter(lab=lab).count()
    quota.check(
        lab=lab,
        adding=_estimate_bytes(len(items), n_test, n_readers, clean["resolution"]),
        what="this snapshot's arrays",
    )
    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.create(
            lab=lab, name=name, created_by=actor, choices=clean, classes=classes,
            counts=_counts(items, classes), selection={"left_out": selected["left_out"]},
            heartbeat_at=timezone.now(),
        )  # fmt: skip
        SnapshotItem.objects.bulk_create(
            SnapshotItem(
                snapshot=snapshot,
                image=it["image"],
                key=it["image"].key,
                label=it["label"],
                label_index=it["label_index"],
                split=it["split"],
                patient_key=it["patient_key"],
                reading_ids=it["reading_ids"],
            )  # fmt: skip
            for it in items
        )
        if enqueue:
            # Through the package's name, so that tests replace the queueing in one place.
            from apps.datasets import services

            services._enqueue(snapshot.pk)
    return snapshot


def _enqueue(snapshot_id: int) -> None:
    from apps.datasets.tasks import snapshot_build_task

    transaction.on_commit(lambda: snapshot_build_task.apply_async(args=[snapshot_id]))


# --- Build ------------------------------------------------------------------------------------
