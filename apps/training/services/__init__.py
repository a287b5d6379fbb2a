"""Training jobs and the model registry: presets and config validation, the job's life (create,
queue, claim, cancel, recovery), the run on a ``gpu`` worker, and registry writes."""

from __future__ import annotations

from apps.training.services.config import (
    APP,
    FIELDS,
    LOSS_SCHEMES,
    PRECISIONS,
    PRESETS,
    config_build,
    config_summary,
)
from apps.training.services.jobs import (
    JOBS,
    _enqueue,
    job_cancel,
    job_claim,
    job_create,
    queue_position,
    training_sweep,
)
from apps.training.services.registry import (
    ALIAS,
    ALIAS_RULE,
    alias_set,
    alias_unset,
    job_curves,
    training_usage_bytes,
    version_checkpoint,
    version_create_for_job,
)
from apps.training.services.run import JobCallback, job_folder, job_run

__all__ = [
    "ALIAS",
    "ALIAS_RULE",
    "APP",
    "FIELDS",
    "JOBS",
    "LOSS_SCHEMES",
    "PRECISIONS",
    "PRESETS",
    "JobCallback",
    "_enqueue",
    "alias_set",
    "alias_unset",
    "config_build",
    "config_summary",
    "job_cancel",
    "job_claim",
    "job_create",
    "job_curves",
    "job_folder",
    "job_run",
    "queue_position",
    "training_sweep",
    "training_usage_bytes",
    "version_checkpoint",
    "version_create_for_job",
]
