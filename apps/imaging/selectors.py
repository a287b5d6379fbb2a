"""Reads of the imaging app, always scoped to a lab."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.imaging.models import (
    DeidentificationAudit,
    Image,
    ImageClass,
    UploadBatch,
    UploadBatchFile,
)
from apps.labs.models import Lab


def image_list(*, lab: Lab, label: str | None = None, search: str = "") -> QuerySet[Image]:
    """Images of ``lab``, newest first; ``label`` filters ("" or "none" for unlabelled),
    ``search`` matches the key (case-insensitive substring)."""
    images = Image.objects.filter(lab=lab)
    if label is not None and label != "":
        images = (
            images.filter(label="")
            if label.lower() == "none"
            else images.filter(label__iexact=label)
        )
    if search:
        images = images.filter(Q(key__icontains=search.strip()))
    return images


def image_get(*, lab: Lab, pk: int) -> Image | None:
    return Image.objects.filter(lab=lab, pk=pk).first()


def image_class_list(*, lab: Lab) -> QuerySet[ImageClass]:
    return ImageClass.objects.filter(lab=lab)


def image_label_counts(*, lab: Lab) -> dict[str, int]:
    """``{label: number of images}`` of ``lab`` ("" for unlabelled)."""
    from django.db.models import Count

    rows = Image.objects.filter(lab=lab).values("label").annotate(n=Count("id"))
    return {row["label"]: row["n"] for row in rows}


def deidentification_audit_list(*, lab: Lab, image: Image | None = None):
    audits = DeidentificationAudit.objects.filter(lab=lab)
    return audits.filter(image=image) if image is not None else audits


def upload_batch_get(*, lab: Lab, pk: int) -> UploadBatch | None:
    return UploadBatch.objects.filter(lab=lab, pk=pk).first()


def upload_batch_list(
    *, lab: Lab, created_by=None, unfinished: bool = False
) -> QuerySet[UploadBatch]:
    """Upload batches of ``lab``, newest first; of one uploader, or only those still running."""
    batches = UploadBatch.objects.filter(lab=lab)
    if created_by is not None:
        batches = batches.filter(created_by=created_by)
    if unfinished:
        batches = batches.filter(status__in=(UploadBatch.Status.QUEUED, UploadBatch.Status.RUNNING))
    return batches


def upload_batch_files(*, batch: UploadBatch) -> QuerySet[UploadBatchFile]:
    """The batch's files in upload order, each zip followed by its members."""
    return batch.files.select_related("image").order_by("position", "member_index", "id")


def image_class_usage(*, lab: Lab) -> dict[str, int]:
    """``{lowercased class name: number of images carrying it}`` of ``lab``."""
    usage: dict[str, int] = {}
    for label, n in image_label_counts(lab=lab).items():
        if label:
            usage[label.lower()] = usage.get(label.lower(), 0) + n
    return usage


def image_delete_impact(*, lab: Lab, image: Image) -> dict[str, int]:
    """What goes with ``image`` when it is deleted, and what keeps a copy.

    Returns counts: ``readings`` (of any session), their ``fixations``, ``saliency_maps`` (its
    readings' maps and its pooled ones), ``regions``, ``recordings`` that lose a reading;
    ``snapshot_items`` (frozen copies in dataset snapshots, kept), ``snapshots`` holding them,
    and of those, ``unbuilt_snapshots`` (queued or building: their build fails without it).
    """
    # The gaze and dataset apps build on imaging: imported here, not at the top.
    from django.db.models import Count

    from apps.datasets.models import DatasetSnapshot, SnapshotItem
    from apps.gaze.models import Fixation, Reading, SaliencyMap
    from apps.imaging.models import ImageRegion

    of_image = Reading.objects.filter(lab=lab, image=image)
    readings = of_image.aggregate(n=Count("id"), recordings=Count("recording", distinct=True))
    items = SnapshotItem.objects.filter(snapshot__lab=lab, image=image)
    snapshots = DatasetSnapshot.objects.filter(lab=lab, items__image=image).distinct()
    unfinished = (DatasetSnapshot.Status.QUEUED, DatasetSnapshot.Status.BUILDING)
    return {
        "readings": readings["n"],
        "fixations": Fixation.objects.filter(lab=lab, reading__in=of_image).count(),
        "recordings": readings["recordings"],
        "saliency_maps": SaliencyMap.objects.filter(lab=lab, image=image).count(),
        "regions": ImageRegion.objects.filter(lab=lab, image=image).count(),
        "snapshot_items": items.count(),
        "snapshots": snapshots.count(),
        "unbuilt_snapshots": snapshots.filter(status__in=unfinished).count(),
    }
