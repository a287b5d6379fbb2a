"""A built snapshot's files: its manifest, a local folder for workers, the export zip with its
README, deletion and its share of the lab's derived-files quota."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone

from apps.core import storage
from apps.datasets.models import DatasetSnapshot, SnapshotFile
from apps.datasets.services.build import _relative
from apps.datasets.services.choices import STALE_BUILD_S
from ml.data.snapshot import (
    SEED_STRIDE,
)
from ml.data.splits import SPLITS

log = logging.getLogger(__name__)


def _require_ready(snapshot: DatasetSnapshot) -> None:
    if snapshot.status != DatasetSnapshot.Status.READY:
        raise ValidationError(
            f"Snapshot {snapshot.name!r} is {snapshot.status}, not ready: its files exist only "
            "once it is built."
        )


def snapshot_manifest(*, snapshot: DatasetSnapshot) -> dict[str, Any]:
    """The built snapshot's manifest (as stored; paths relative to its folder)."""
    import json

    _require_ready(snapshot)
    return json.loads(storage.read_bytes(snapshot.manifest_name))


def _array_names(snapshot: DatasetSnapshot) -> dict[str, str]:
    """Relative path in the manifest folder -> storage name, for every array."""
    names = {}
    for name in SnapshotFile.objects.filter(snapshot=snapshot).values_list("name", flat=True):
        digest = storage.digest_of(name)
        if name.endswith(".npy") and digest:
            names[_relative(digest)] = name
    return names


def snapshot_local_folder(*, snapshot: DatasetSnapshot) -> Path:
    """A local folder holding the snapshot as ``ManifestDataset`` reads it: ``manifest.json``
    and ``arrays/<sha256>.npy``, under ``STORAGE_CACHE_DIR/snapshots/<content hash>``.

    Each array is fetched through ``storage.local_file`` (the stored file itself on the
    filesystem, a hash-checked cached copy from a remote store) and hard-linked (or copied) in;
    the folder is made under a temporary name and renamed into place, so a reader never sees half
    a folder, and it is reused while it exists (a snapshot never changes).
    """
    _require_ready(snapshot)
    root = Path(settings.STORAGE_CACHE_DIR) / "snapshots"
    final = root / snapshot.content_hash
    if (final / "manifest.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{snapshot.content_hash[:12]}-"))
    try:
        (tmp / "arrays").mkdir()
        for relative, name in _array_names(snapshot).items():
            source = storage.local_file(name)
            try:
                os.link(source, tmp / relative)
            except OSError:
                shutil.copyfile(source, tmp / relative)
        (tmp / "manifest.json").write_bytes(storage.read_bytes(snapshot.manifest_name))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "manifest.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another worker made it meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def snapshot_readme(*, snapshot: DatasetSnapshot) -> str:
    """What the snapshot holds and what was chosen, in words (README.txt of the export)."""
    c = snapshot.choices
    height, width = c["resolution"]
    target = (
        "the original MT-UNet preprocessing (seed mode): images zero-padded centred to "
        f"{height * SEED_STRIDE} x {width * SEED_STRIDE} and every {SEED_STRIDE}th pixel kept; "
        "targets from raw-sample counts (each fixation counts as duration x sampling rate "
        "samples) blurred with the original 501-px kernel, min-max normalised"
        if c["seed_mode"]
        else "images letterboxed (aspect kept, anti-aliased, centred zero padding); targets are "
        f"duration-weighted Gaussian fixation densities, sigma = {c['sigma_deg']:g} degree(s) "
        "of visual angle, summing to 1"
    )
    lines = [
        f"Dataset snapshot: {snapshot.name}",
        f"Content hash (SHA-256 of manifest.json): {snapshot.content_hash}",
        f"Lab: {snapshot.lab.name}",
        f"Created by: {snapshot.created_by.username if snapshot.created_by else '-'}",
        f"Built: {snapshot.built_at.isoformat() if snapshot.built_at else '-'}",
        "",
        "Chosen",
        f"  classes (label index order): {', '.join(snapshot.classes)}",
        f"  readers: {', '.join(c['readers']) or 'all'}",
        f"  sessions: {', '.join(map(str, c['sessions'])) or 'all'}",
        f"  reading quality: {c['min_grade']} or better",
        f"  only readings flagged for training: {'yes' if c['use_for_training_only'] else 'no'}",
        f"  uploaded after: {c['uploaded_after'] or '-'}; before: {c['uploaded_before'] or '-'}",
        f"  model resolution: {height} x {width} (height x width)",
        f"  targets: {target}",
        "  pooled over: "
        + (f"reader {c['target_reader']} only" if c["target_reader"] else "all readers chosen"),
        f"  split: {'by patient' if c['split'] == 'patient' else 'by image'}, the 2/1/7 rule "
        f"(test/val/train per class), seed {c['seed']}",
        "",
        "Images per split and class",
    ]
    for split in SPLITS:
        per = snapshot.counts.get(split, {})
        lines.append(
            f"  {split:5}: {sum(per.values()):5d}  ("
            + ", ".join(f"{k} {v}" for k, v in per.items())
            + ")"
        )
    left = (snapshot.selection or {}).get("left_out", {})
    if left:
        lines += [
            "",
            "Left out: "
            f"{left.get('not_in_classes', 0)} without a chosen label, "
            f"{left.get('outside_dates', 0)} outside the dates, "
            f"{left.get('no_reading', 0)} without a reading that passes the filters.",
        ]
    lines += [
        "",
        "Layout",
        "  manifest.json   format ml.manifest/1: classes, resolution, and per item its key, label",
        "                  (index into classes), split, patient_id (a keyed hash, or image:<key>),",
        "                  transform (image pixels -> model pixels), and paths of its arrays;",
        "                  test items also name each reader's own target and fixations.",
        "  arrays/*.npy    image (float32 [0, 1]), target (float32), fixations (int64 (N, 2) x, y",
        "                  in model pixels), named by their SHA-256.",
        "",
        "Load: ml.data.ManifestDataset('manifest.json', split='train').",
        "",
    ]
    return "\n".join(lines)


def snapshot_export_zip(*, snapshot: DatasetSnapshot) -> BinaryIO:
    """The built snapshot as a zip (``manifest.json``, ``arrays/``, ``README.txt``), in a
    temporary file (in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, then on disk), rewound."""
    _require_ready(snapshot)
    out = storage.spooled_temp()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("README.txt", snapshot_readme(snapshot=snapshot))
        zf.writestr("manifest.json", storage.read_bytes(snapshot.manifest_name))
        for relative, name in sorted(_array_names(snapshot).items()):
            with storage.open_file(name) as src, zf.open(relative, "w") as dst:
                shutil.copyfileobj(src, dst, storage.CHUNK)
    out.seek(0)
    return out


# --- Delete and quota -------------------------------------------------------------------------


def snapshot_delete(*, snapshot: DatasetSnapshot) -> None:
    """Delete a snapshot; its files follow once the transaction commits (unless another
    snapshot names them). A snapshot being built is refused until its build ends or stalls."""
    if snapshot.status == DatasetSnapshot.Status.BUILDING:
        beat = snapshot.heartbeat_at
        if beat is not None and (timezone.now() - beat).total_seconds() < STALE_BUILD_S:
            raise ValidationError(
                f"Snapshot {snapshot.name!r} is being built ({snapshot.progress} %): delete it "
                "when its build has ended."
            )
    snapshot.delete()


def snapshot_usage_bytes(lab_id: int) -> int:
    """Bytes of the lab's snapshot files (its share of the derived-files quota)."""
    total = SnapshotFile.objects.filter(snapshot__lab_id=lab_id).aggregate(n=Sum("size"))["n"]
    return int(total or 0)
