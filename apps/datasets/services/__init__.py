"""Dataset snapshots: choices and creation, the build on a worker, and a built snapshot's files
(manifest, local folder, export, deletion)."""

from __future__ import annotations

from apps.datasets.services.build import (
    snapshot_build,
    snapshot_claim,
    snapshots_sweep,
)
from apps.datasets.services.choices import (
    APP,
    DEFAULT_RESOLUTION,
    GRADES,
    MAX_SIDE,
    SEED_DEFAULT_RATE_HZ,
    SPLIT_RULES,
    STALE_BUILD_S,
    SnapshotBuildError,
    _enqueue,
    snapshot_choices_clean,
    snapshot_create,
    snapshot_select,
)
from apps.datasets.services.files import (
    snapshot_delete,
    snapshot_export_zip,
    snapshot_local_folder,
    snapshot_manifest,
    snapshot_readme,
    snapshot_usage_bytes,
)

__all__ = [
    "APP",
    "DEFAULT_RESOLUTION",
    "GRADES",
    "MAX_SIDE",
    "SEED_DEFAULT_RATE_HZ",
    "SPLIT_RULES",
    "STALE_BUILD_S",
    "SnapshotBuildError",
    "_enqueue",
    "snapshot_build",
    "snapshot_choices_clean",
    "snapshot_claim",
    "snapshot_create",
    "snapshot_delete",
    "snapshot_export_zip",
    "snapshot_local_folder",
    "snapshot_manifest",
    "snapshot_readme",
    "snapshot_select",
    "snapshot_usage_bytes",
    "snapshots_sweep",
]
