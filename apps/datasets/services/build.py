"""Building a snapshot on a worker: claim, letterbox each image, make the targets and fixations at
model resolution, write the arrays and the ``ml.manifest/1`` manifest through the storage API, and
the content hash."""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.core import jobs, quota, storage
from apps.core.errors import QuotaExceeded
from apps.datasets.models import DatasetSnapshot, SnapshotFile, SnapshotItem
from apps.datasets.services.choices import (
    APP,
    SEED_DEFAULT_RATE_HZ,
    SnapshotBuildError,
    _estimate_bytes,
)
from apps.gaze.models import Reading
from apps.gaze.services.saliency import reading_saliency_inputs
from apps.imaging.services.pixels import array_read
from ml.data.manifest import FORMAT
from ml.data.snapshot import (
    SEED_STRIDE,
    SNAPSHOT_CODE_VERSION,
    canonical_json,
    fixations_to_model,
    model_frame,
    seed_samples,
    snapshot_hash,
)
from ml.saliency_maps import (
    SALIENCY_CODE_VERSION,
    fixation_density,
    original_mtunet_target,
    pool_maps,
)

log = logging.getLogger(__name__)


def snapshot_claim(*, snapshot_id: int) -> DatasetSnapshot | None:
    """Move a queued snapshot to building under a row lock; None when it is not queued (a
    message delivered twice, or a snapshot deleted since), so a build never runs twice."""
    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.select_for_update().filter(pk=snapshot_id).first()
        if snapshot is None or snapshot.status != DatasetSnapshot.Status.QUEUED:
            return None
        now = timezone.now()
        snapshot.status, snapshot.started_at, snapshot.heartbeat_at = "building", now, now
        snapshot.progress = 0
        snapshot.attempts += 1
        snapshot.save(
            update_fields=["status", "started_at", "heartbeat_at", "progress", "attempts"]
        )
        return snapshot


class _Writer:
    """Stores a snapshot's arrays content-addressed, one ``SnapshotFile`` row per file."""

    def __init__(self, snapshot: DatasetSnapshot):
        self.snapshot = snapshot
        self.sizes: dict[str, int] = {}  # storage name -> bytes

    def put(self, kind: str, data: bytes, ext: str) -> tuple[str, str]:
        stored = storage.put(
            app=APP, lab_id=self.snapshot.lab_id, kind=kind, ext=ext, fh=io.BytesIO(data)
        )
        if stored.name not in self.sizes:
            self.sizes[stored.name] = len(data)
            SnapshotFile.objects.get_or_create(
                snapshot=self.snapshot, name=stored.name, defaults={"size": len(data)}
            )
        return stored.name, stored.sha256

    def array(self, kind: str, values: np.ndarray) -> tuple[str, str]:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(values), allow_pickle=False)
        return self.put(kind, buf.getvalue(), "npy")


def _relative(sha256: str) -> str:
    return f"arrays/{sha256}.npy"


def _reading_parts(reading: Reading, sigma_deg: float) -> dict[str, Any]:
    inputs, _mode = reading_saliency_inputs(reading=reading)
    inputs["sigma_px"] = np.asarray(inputs["sigma_px"], dtype=np.float64) * sigma_deg
    rate = reading.session.sampling_rate_hz or SEED_DEFAULT_RATE_HZ
    return {"inputs": inputs, "code": reading.session.reader.code, "rate": float(rate)}


def _target(parts: list[dict[str, Any]], transform, choices: dict[str, Any], what: str):
    """The target of ``parts`` (readings) in the model's frame, and their fixations there."""
    xy = np.concatenate([p["inputs"]["fixations_xy"] for p in parts]).reshape(-1, 2)
    fixations = fixations_to_model(xy, transform)
    if choices["seed_mode"]:
        samples = np.concatenate(
            [
                seed_samples(p["inputs"]["fixations_xy"], p["inputs"]["durations_ms"], p["rate"])
                for p in parts
            ]
        ).reshape(-1, 2)
        height, width = choices["resolution"]
        target = original_mtunet_target(
            samples, parts[0]["inputs"]["image_size"],
            padded=(height * SEED_STRIDE, width * SEED_STRIDE), stride=SEED_STRIDE,
        )  # fmt: skip
        if not target.max() > 0:
            raise SnapshotBuildError(f"{what}: no gaze sample falls on the image.")
        return target, fixations
    maps = []
    for p in parts:
        try:
            maps.append(fixation_density(transform=transform, **p["inputs"]))
        except ValueError:
            continue  # nothing of this reading leaves mass on the map
    if not maps:
        raise SnapshotBuildError(f"{what}: no fixation of its readings falls on the image.")
    return pool_maps(maps), fixations


def _progress(snapshot: DatasetSnapshot, done: int, total: int) -> None:
    # 95 %: the manifest is still to come.
    progress = min(95, round(95 * done / max(1, total)))
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        progress=progress, heartbeat_at=timezone.now()
    )


def _build(snapshot: DatasetSnapshot) -> dict[str, Any]:
    choices = snapshot.choices
    resolution = tuple(choices["resolution"])
    items = list(snapshot.items.select_related("image").order_by("key"))
    reading_ids = {pk for item in items for pk in item.reading_ids}
    readings = {
        r.pk: r
        for r in Reading.objects.filter(lab_id=snapshot.lab_id, pk__in=reading_ids).select_related(
            "session__reader", "image"
        )
    }
    n_test = sum(item.split == "test" for item in items)
    n_readers = len({r.session.reader_id for r in readings.values()})
    quota.check(
        lab=snapshot.lab,
        adding=_estimate_bytes(len(items), n_test, n_readers, list(resolution)),
        what="this snapshot's arrays",
    )
    writer = _Writer(snapshot)
    manifest_items = []
    for done, item in enumerate(items):
        if item.image is None:
            raise SnapshotBuildError(
                f"Image {item.key!r} was deleted after the snapshot was chosen; create it again."
            )
        what = f"Image {item.key!r}"
        parts = [
            _reading_parts(readings[pk], choices["sigma_deg"])
            for pk in item.reading_ids
            if pk in readings
        ]
        if not parts:
            raise SnapshotBuildError(f"{what}: its readings were deleted after it was chosen.")
        pixels = array_read(item.image.array_path)
        frame, transform = model_frame(pixels, resolution, seed_mode=choices["seed_mode"])
        del pixels
        reader = choices["target_reader"]
        target_parts = [p for p in parts if reader in (None, p["code"])]
        if not target_parts:
            raise SnapshotBuildError(f"{what}: reader {reader}'s reading of it was deleted.")
        target, fixations = _target(target_parts, transform, choices, what)
        item.image_name, image_sha = writer.array("images", frame.astype(np.float32))
        item.target_name, target_sha = writer.array("targets", target.astype(np.float32))
        item.fixations_name, fix_sha = writer.array("fixations", fixations.astype(np.int64))
        item.n_fixations = len(fixations)
        entry: dict[str, Any] = {
            "key": item.key,
            "image": _relative(image_sha),
            "target": _relative(target_sha),
            "fixations": _relative(fix_sha),
            "label": item.label_index,
            "split": item.split,
            "patient_id": item.patient_key or f"image:{item.key}",
            "transform": transform.to_dict(),
        }
        item.reader_targets = {}
        if item.split == "test":
            # Evaluation scores the model against each reader too: their own targets.
            by_reader: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for p in parts:
                by_reader[p["code"]].append(p)
            reader_targets, reader_fixations = {}, {}
            for code in sorted(by_reader):
                try:
                    values, fix = _target(by_reader[code], transform, choices, what)
                except SnapshotBuildError:
                    continue  # this reader left nothing on the image
                name, sha = writer.array("targets", values.astype(np.float32))
                fix_name, fsha = writer.array("fixations", fix.astype(np.int64))
                item.reader_targets[code] = {"target": name, "fixations": fix_name}
                reader_targets[code], reader_fixations[code] = _relative(sha), _relative(fsha)
            entry["reader_targets"] = reader_targets
            entry["reader_fixations"] = reader_fixations
        item.save(update_fields=[
            "image_name", "target_name", "fixations_name", "n_fixations", "reader_targets",
        ])  # fmt: skip
        manifest_items.append(entry)
        _progress(snapshot, done + 1, len(items))
    manifest = {
        "format": FORMAT,
        "classes": list(snapshot.classes),
        "resolution": list(resolution),
        "items": manifest_items,
        "choices": choices,
        "code_version": SNAPSHOT_CODE_VERSION,
        "saliency_code_version": SALIENCY_CODE_VERSION,
    }
    content = canonical_json(manifest)
    digest = snapshot_hash(manifest)
    manifest_name, sha = writer.put("manifests", content, "json")
    assert sha == digest, "the manifest's name must carry its hash"
    return {"hash": digest, "manifest_name": manifest_name, "size": sum(writer.sizes.values())}


def _discard_files(snapshot: DatasetSnapshot) -> None:
    """Remove a failed build's files (those no other snapshot names) and its items' names."""
    with transaction.atomic():
        SnapshotFile.objects.filter(snapshot=snapshot).delete()  # files follow on commit
        SnapshotItem.objects.filter(snapshot=snapshot).update(
            image_name="", target_name="", fixations_name="", reader_targets={}, n_fixations=0
        )


def snapshot_build(*, snapshot_id: int) -> DatasetSnapshot | None:
    """Build a queued snapshot (the task's body). Idempotent: a snapshot that is not queued is
    left alone (returns None). On an error the snapshot is ``failed`` with the reason and the
    files it wrote are removed."""
    snapshot = snapshot_claim(snapshot_id=snapshot_id)
    if snapshot is None:
        log.info("snapshot %s is not queued; nothing to do", snapshot_id)
        return None
    try:
        result = _build(snapshot)
    except BaseException as exc:
        if isinstance(exc, SnapshotBuildError | QuotaExceeded):
            error = str(exc)
        else:
            log.exception("the build of snapshot %s failed", snapshot_id)
            error = f"The build stopped ({type(exc).__name__}: {exc})."
        _discard_files(snapshot)
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
            status=DatasetSnapshot.Status.FAILED, error=error, heartbeat_at=timezone.now(),
            built_at=timezone.now(),
        )  # fmt: skip
        snapshot.refresh_from_db()
        if not isinstance(exc, Exception):
            raise
        return snapshot
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        status=DatasetSnapshot.Status.READY, progress=100, content_hash=result["hash"],
        manifest_name=result["manifest_name"], size_bytes=result["size"],
        heartbeat_at=timezone.now(), built_at=timezone.now(),
    )  # fmt: skip
    snapshot.refresh_from_db()
    return snapshot


# --- Reads of a built snapshot ----------------------------------------------------------------


# --- Recovery ----------------------------------------------------------------------------------


def _snapshot_requeue(snapshot: DatasetSnapshot) -> None:
    """A build whose worker died starts over: its half-written files go, the choices stay."""
    _discard_files(snapshot)
    snapshot.status, snapshot.progress = DatasetSnapshot.Status.QUEUED, 0
    snapshot.heartbeat_at = timezone.now()
    snapshot.save(update_fields=["status", "progress", "heartbeat_at"])


def _snapshot_fail(snapshot: DatasetSnapshot, reason: str) -> None:
    _discard_files(snapshot)
    snapshot.status, snapshot.error = DatasetSnapshot.Status.FAILED, f"The build {reason}."
    snapshot.heartbeat_at = timezone.now()
    snapshot.save(update_fields=["status", "error", "heartbeat_at"])


def _snapshot_enqueue(snapshot_id: int) -> None:
    from apps.datasets import services  # the package's name: tests replace the queueing there

    services._enqueue(snapshot_id)


SNAPSHOTS = jobs.JobKind(
    name="snapshot builds", model=DatasetSnapshot, queued=DatasetSnapshot.Status.QUEUED,
    running=DatasetSnapshot.Status.BUILDING, requeue=_snapshot_requeue, fail=_snapshot_fail,
    enqueue=_snapshot_enqueue,
)  # fmt: skip


def snapshots_sweep(*, now=None) -> dict[str, list[int]]:
    """Recover snapshot builds that show no sign of life (``apps.core.jobs.sweep``)."""
    return jobs.sweep(SNAPSHOTS, now=now)
