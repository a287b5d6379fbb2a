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
