"""The training job's body on a ``gpu`` worker: claim, fetch the snapshot and the last uploaded
checkpoint into a local folder, run ``ml.train.train`` with a callback that reports progress,
uploads each epoch's checkpoint and stops on cancel, then end the job (succeeded with its model
version, cancelled, or failed with the cause and traceback).

Every write a worker makes is conditional on its attempt still owning the job (status running
and the same ``attempts``), so an attempt the sweeper gave up on can never overwrite the work of
the attempt that replaced it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import traceback as traceback_module
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import files, storage
from apps.datasets.services import snapshot_local_folder
from apps.training.models import EpochMetrics, TrainingJob
from apps.training.services.config import APP
from apps.training.services.jobs import _close_attempt, append_log, job_claim, job_ended_emit
from apps.training.services.registry import version_create_for_job
from ml.data.manifest import ManifestDataset
from ml.train import BEST, LAST, Callback, TrainConfig, train

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 0.25  # at most four progress writes a second
CANCEL_CHECK_EVERY_S = 1.0  # at most one read of the cancel flag a second


def batch_pause_s() -> float:
    """Seconds to pause after each batch (``TRAINING_BATCH_PAUSE_S``, default 0): a test and
    demo knob only, which makes a tiny run slow enough to watch, cancel or kill."""
    return max(0.0, float(settings.TRAINING_BATCH_PAUSE_S))


class JobFailed(Exception):
    """A cause the job page names in plain words (no traceback needed)."""


def job_folder(job_id: int) -> Path:
    """Where a worker trains a job: ``VAR_DIR/training/job-<id>`` on this machine."""
    return Path(settings.VAR_DIR) / "training" / f"job-{job_id}"


def _owned(job_id: int, attempt: int):
    return TrainingJob.objects.filter(
        pk=job_id, attempts=attempt, status=TrainingJob.Status.RUNNING
    )


def _put(job: TrainingJob, path: Path) -> storage.Stored:
    with path.open("rb") as fh:
        return storage.put(app=APP, lab_id=job.lab_id, kind="checkpoints", fh=fh, ext="pt")


class _LogLines(logging.Handler):
    """Collects this app's and ``ml``'s log records of one run, for the job's log tail."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # logging must never break training
            self.sink.append(self.format(record))


class JobCallback(Callback):
    """Progress of one attempt into the database: a throttled heartbeat with the batch and an
    ETA, one ``EpochMetrics`` row and one uploaded checkpoint per epoch, the log lines, and the
    cancel flag (read at most once a second)."""

    def __init__(self, job: TrainingJob, attempt: int, n_train: int, folder: Path) -> None:
        self.job_id, self.lab_id, self.attempt = job.pk, job.lab_id, attempt
        self.job = job
        self.n_train = n_train
        self.folder = folder
        self.max_epochs = job.max_epochs
        self.lines: list[str] = []
        self.last_write = 0.0
        self.last_check = 0.0
        self.cancel = False
        self.superseded = False
        self.epoch_started = time.monotonic()
        self.epoch_times: list[float] = []
        self.pause_s = batch_pause_s()

    def _eta(self, epoch: int, batch: int, num_batches: int) -> float:
        spent = time.monotonic() - self.epoch_started
        per_batch = spent / max(batch, 1)
        this_epoch = per_batch * (num_batches - batch)
        per_epoch = (
            sum(self.epoch_times) / len(self.epoch_times) if self.epoch_times
            else per_batch * num_batches
        )  # fmt: skip
        return this_epoch + per_epoch * max(0, self.max_epochs - epoch)

    def on_batch_end(self, epoch: int, batch: int, num_batches: int, loss: float) -> None:
        if self.pause_s:
            time.sleep(self.pause_s)
        now = time.monotonic()
        if now - self.last_write < HEARTBEAT_EVERY_S and batch != num_batches:
            return
        self.last_write = now
        updated = _owned(self.job_id, self.attempt).update(
            heartbeat_at=timezone.now(), epoch=epoch - 1, batch=batch, num_batches=num_batches,
            eta_s=self._eta(epoch, batch, num_batches),
        )  # fmt: skip
        if not updated:
            self.superseded = self.cancel = True

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if self.cancel or now - self.last_check < CANCEL_CHECK_EVERY_S:
            return self.cancel
        self.last_check = now
        row = (
            TrainingJob.objects.filter(pk=self.job_id)
            .values("cancel_requested", "status", "attempts")
            .first()
        )
        if row is None or row["status"] != "running" or row["attempts"] != self.attempt:
            self.superseded = self.cancel = True
        elif row["cancel_requested"]:
            self.cancel = True
            log.info("cancel requested: stopping before the next batch")
        return self.cancel

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        epoch = int(record["epoch"])
        time_s = float(record.get("time_s") or (time.monotonic() - self.epoch_started))
        # Images per second over the training phase only (validation and checkpoints left
        # out); a record from before ``train_time_s`` existed falls back to the whole epoch.
        train_time_s = float(record.get("train_time_s") or time_s)
        self.epoch_times.append(time_s)
        best = _put(self.job, self.folder / BEST) if (self.folder / BEST).exists() else None
        last = _put(self.job, self.folder / LAST)
        sizes = {
            "last": (self.folder / LAST).stat().st_size,
            "best": (self.folder / BEST).stat().st_size if best else 0,
        }
        self.lines.append(
            f"{timezone.now():%H:%M:%S} epoch {epoch}: lr {record['lr']:.1e} "
            f"train {record['train_loss']:.4f} val {record['val_loss']:.4f}"
            + (f" acc {record['val_accuracy']:.3f}" if "val_accuracy" in record else "")
            + (f" cc {record['val_cc']:.3f}" if "val_cc" in record else "")
            + (" (best)" if record.get("improved") else "")
        )
        old: set[str] = set()
        with transaction.atomic():
            job = _owned(self.job_id, self.attempt).select_for_update().first()
            if job is None:
                self.superseded = self.cancel = True
                return
            EpochMetrics.objects.update_or_create(
                job=job, epoch=epoch,
                defaults={
                    "attempt": self.attempt, "lr": record["lr"],
                    "train_loss": record["train_loss"],
                    "train_classification": record.get("train_classification"),
                    "train_saliency": record.get("train_saliency"),
                    "val_loss": record["val_loss"],
                    "val_classification": record.get("val_classification"),
                    "val_kl": record.get("val_saliency"),
                    "val_accuracy": record.get("val_accuracy"),
                    "val_cc": record.get("val_cc"), "sigma_c": record.get("sigma_c"),
                    "sigma_s": record.get("sigma_s"), "improved": bool(record.get("improved")),
                    "lr_dropped": bool(record.get("lr_dropped")), "time_s": time_s,
                    "images_per_s": self.n_train / train_time_s if train_time_s > 0 else 0.0,
                },
            )  # fmt: skip
            old = {job.checkpoint_name, job.best_name}
            job.checkpoint_name, job.checkpoint_size = last.name, sizes["last"]
            if best is not None:
                job.best_name, job.best_size = best.name, sizes["best"]
            job.checkpoint_epoch = job.epoch = epoch
            job.batch, job.heartbeat_at = 0, timezone.now()
            job.log_tail = append_log(job, self.lines)
            self.lines.clear()
            job.save(update_fields=["checkpoint_name", "checkpoint_size", "best_name",
                                    "best_size", "checkpoint_epoch", "epoch", "batch",
                                    "heartbeat_at", "log_tail"])  # fmt: skip
            files.delete_after_commit(old - {job.checkpoint_name, job.best_name, ""})
        self.epoch_started = time.monotonic()


def _prepare_folder(job: TrainingJob) -> Path:
    """A clean local folder holding the job's last uploaded checkpoint (and its best), so that
    the run resumes after the last epoch that finished, on whatever machine this is."""
    folder = job_folder(job.pk)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, filename in ((job.checkpoint_name, LAST), (job.best_name, BEST)):
        if name:
            shutil.copyfile(storage.local_file(name), folder / filename)
    return folder


@contextlib.contextmanager
def _no_nan_fill():
    """Leave new tensors unfilled while the job trains.

    ``TrainConfig.deterministic`` (on by default) turns on torch's deterministic algorithms, and
    with them ``torch.utils.deterministic.fill_uninitialized_memory``: every tensor made by
    ``torch.empty`` is first filled with NaN, a debugging aid that kernels which write all of
    their output (all of MT-UNet's) do not need: 1,260 ``fill_`` calls a step at 320 x 256,
    base 64, batch 2, bf16. On a quiet 2-core CPU that is about 2 % of a step (steps taken in
    turn with and without it: medians 1.73 and 1.69 s); with the memory bandwidth shared with
    other work, a profile put it at 13 % of the step's operator time. The kernels chosen, and
    so the results, stay the same; the setting is restored afterwards.
    """
    import torch.utils.deterministic

    previous = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = previous


def _datasets(job: TrainingJob) -> tuple[ManifestDataset, ManifestDataset]:
    if job.snapshot is None:
        raise JobFailed("Its dataset snapshot was deleted.")
    manifest = snapshot_local_folder(snapshot=job.snapshot) / "manifest.json"
    train_set, val_set = ManifestDataset(manifest, "train"), ManifestDataset(manifest, "val")
    if not len(train_set) or not len(val_set):
        raise JobFailed(
            f"Snapshot {job.snapshot.name!r} needs images in both its train and val splits "
            f"(it has {len(train_set)} and {len(val_set)})."
        )
    return train_set, val_set


def _cause(exc: BaseException) -> str:
    """The cause of a failure in words."""
    name = type(exc).__name__
    if isinstance(exc, JobFailed):
        return str(exc)
    if name == "SoftTimeLimitExceeded":
        return "It ran past CELERY_GPU_TASK_SOFT_TIME_LIMIT; its last checkpoint is kept."
    if name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return f"The device ran out of memory ({exc}); try a smaller batch size or base channels."
    if isinstance(exc, storage.StorageError):
        return f"A stored file could not be read: {exc}"
    return f"The training stopped ({name}: {exc})."


def _end(job_id: int, attempt: int, status: str, lines: list[str], **fields) -> bool:
    """End the attempt's job with ``status`` (if the attempt still owns it)."""
    with transaction.atomic():
        job = _owned(job_id, attempt).select_for_update().first()
        if job is None:
            return False
        now = timezone.now()
        _close_attempt(job, status, now=now)
        job.status, job.finished_at, job.heartbeat_at = status, now, now
        job.batch, job.eta_s = 0, None
        job.log_tail = append_log(job, [*lines, f"{now:%H:%M:%S} {status}"])
        for key, value in fields.items():
            setattr(job, key, value)
        job.save()
        if status == TrainingJob.Status.SUCCEEDED:
            version_create_for_job(job=job)
        job_ended_emit(job=job)
    return True


def job_run(*, job_id: int) -> TrainingJob | None:
    """Run a queued job (the task's body). Idempotent: a job that is not queued is left alone
    (returns None)."""
    job = job_claim(job_id=job_id)
    if job is None:
        log.info("training job %s is not queued; nothing to do", job_id)
        return None
    attempt = job.attempts
    lines: list[str] = []
    handler = _LogLines(lines)
    loggers = [logging.getLogger("apps.training"), logging.getLogger("ml")]
    for logger in loggers:
        logger.addHandler(handler)
    callback = None
    try:
        train_set, val_set = _datasets(job)
        folder = _prepare_folder(job)
        callback = JobCallback(job, attempt, len(train_set), folder)
        callback.lines = lines
        config = TrainConfig.from_dict(job.config)
        log.info("training %s on %d train / %d val images", config.model, len(train_set),
                 len(val_set))  # fmt: skip
        with _no_nan_fill():
            result = train(config, train_set, val_set, folder, callbacks=[callback], resume=True)
        if callback.superseded:
            log.warning("training job %s attempt %s was superseded; leaving it", job_id, attempt)
        elif result.stop_reason == "cancelled":
            _end(job_id, attempt, TrainingJob.Status.CANCELLED, lines, stop_reason="cancelled",
                 device=result.device)  # fmt: skip
        else:
            best = _put(job, result.best_checkpoint or result.last_checkpoint)
            _end(
                job_id,
                attempt,
                TrainingJob.Status.SUCCEEDED,
                lines,
                stop_reason=result.stop_reason,
                device=result.device,
                best_name=best.name,
                best_size=(result.best_checkpoint or result.last_checkpoint).stat().st_size,
            )
            shutil.rmtree(folder, ignore_errors=True)
    except BaseException as exc:
        if not isinstance(exc, JobFailed):
            log.exception("training job %s failed", job_id)
        _end(
            job_id,
            attempt,
            TrainingJob.Status.FAILED,
            lines,
            error=_cause(exc),
            traceback="" if isinstance(exc, JobFailed) else traceback_module.format_exc(),
        )
        if not isinstance(exc, Exception):
            raise
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    return TrainingJob.objects.filter(pk=job_id).first()
