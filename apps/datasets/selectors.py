"""Reads of dataset snapshots, always scoped to a lab (or to the labs a user belongs to)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from apps.datasets.models import DatasetSnapshot, SnapshotItem
from apps.labs.models import Lab


def snapshot_list(*, lab: Lab) -> QuerySet[DatasetSnapshot]:
    return DatasetSnapshot.objects.filter(lab=lab).select_related("created_by")


def snapshot_get(*, user_labs: Iterable[int], pk: int) -> DatasetSnapshot | None:
    """A snapshot of one of ``user_labs`` (None for anything else: other labs do not exist)."""
    return (
        DatasetSnapshot.objects.filter(lab__in=list(user_labs), pk=pk)
        .select_related("lab", "created_by")
        .first()
    )


def snapshot_items(*, snapshot: DatasetSnapshot) -> QuerySet[SnapshotItem]:
    return SnapshotItem.objects.filter(snapshot=snapshot).order_by("split", "key")


def snapshot_identical(*, snapshot: DatasetSnapshot) -> list[int]:
    """Other ready snapshots of the lab with the same content hash (same choices, same data)."""
    if not snapshot.content_hash:
        return []
    return list(
        DatasetSnapshot.objects.filter(
            lab_id=snapshot.lab_id, content_hash=snapshot.content_hash,
            status=DatasetSnapshot.Status.READY,
        )
        .exclude(pk=snapshot.pk)
        .order_by("id")
        .values_list("pk", flat=True)
    )  # fmt: skip
