"""Training jobs in process: config validation, a run to success with its model version,
resume after a crash without repeating finished epochs, cancel, the sweeper, aliases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from apps.core import storage
from apps.training import services
from apps.training.models import EpochMetrics, ModelVersion, TrainingJob
from apps.training.services import run as run_module
from ml.checkpoint import load_checkpoint
from tests.apps.training.objects import TINY, model_version

pytestmark = pytest.mark.django_db


def _job(snapshot, personas, **overrides):
    return services.job_create(
        snapshot=snapshot, actor=personas.researcher_a, overrides={**TINY, **overrides},
        enqueue=False,
    )  # fmt: skip


def test_presets_and_validation_name_the_field(snapshot, personas):
    paper = services.config_build(preset="paper", overrides={}, num_classes=3)
    assert paper["model_config"] == {"base_channels": 64, "num_classes": 3}
    assert (paper["batch_size"], paper["lr"], paper["patience"]) == (6, 1e-4, 40)
    quick = services.config_build(preset="quick", overrides={}, num_classes=3)
    assert quick["model_config"]["base_channels"] <= 8 and quick["max_epochs"] <= 5
    for field, value in [("lr", 0), ("batch_size", 0), ("model", "resnet"), ("precision", "x"),
                         ("loss", "mse"), ("epochs", True)]:  # fmt: skip
        with pytest.raises(ValidationError) as info:
            services.config_build(preset="quick", overrides={field: value}, num_classes=3)
        assert field in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        services.config_build(preset="nope", overrides={}, num_classes=3)
    assert "preset" in info.value.message_dict


def test_a_snapshot_that_is_not_ready_is_refused(snapshot, personas):
    snapshot.status = "queued"
    snapshot.save()
    with pytest.raises(ValidationError) as info:
        _job(snapshot, personas)
    assert "snapshot" in info.value.message_dict


def test_a_job_runs_to_success_and_registers_one_version(snapshot, personas):
    job = _job(snapshot, personas)
    assert services.queue_position(job) == 1
    done = services.job_run(job_id=job.pk)
    assert done.status == "succeeded", (done.error, done.traceback)
    assert done.epoch == 3 and done.stop_reason == "max_epochs"
    rows = list(EpochMetrics.objects.filter(job=job).order_by("epoch"))
    assert [r.epoch for r in rows] == [1, 2, 3]
    assert all(r.val_kl is not None and r.val_accuracy is not None and r.images_per_s > 0
               for r in rows)  # fmt: skip
    version = ModelVersion.objects.get(job=job)
    assert version.checkpoint_sha256 == storage.digest_of(version.checkpoint_name)
    state = load_checkpoint(storage.local_file(version.checkpoint_name))
    assert state["epoch"] == version.best_epoch
    assert version.curves["epoch"] == [1, 2, 3] and version.metrics["epoch"] == version.best_epoch
    assert [a["outcome"] for a in done.attempt_log] == ["succeeded"]
    assert "epoch 3" in done.log_tail
    # Run again (a message delivered twice): nothing happens; a second version cannot exist.
    assert services.job_run(job_id=job.pk) is None
    with pytest.raises(IntegrityError):
        ModelVersion.objects.create(lab=job.lab, job=job, name="x", checkpoint_name="x")


class Crash(BaseException):
    """The worker dies: nothing after this point runs (no failure is written)."""


def test_a_crashed_job_resumes_from_its_checkpoint_without_repeating_epochs(
    snapshot, personas, monkeypatch
):
    reference = services.job_run(job_id=_job(snapshot, personas, epochs=4).pk)
    assert reference.status == "succeeded"
    job = _job(snapshot, personas, epochs=4)
    original = run_module.JobCallback.on_batch_end

    def dies_in_epoch_3(self, epoch, batch, num_batches, loss):
        original(self, epoch, batch, num_batches, loss)
        if epoch == 3:
            raise Crash

    monkeypatch.setattr(run_module.JobCallback, "on_batch_end", dies_in_epoch_3)
    monkeypatch.setattr(run_module, "_end", lambda *a, **k: True)  # a dead worker writes nothing
    with pytest.raises(Crash):
        services.job_run(job_id=job.pk)
    monkeypatch.undo()
    job.refresh_from_db()
    assert (job.status, job.checkpoint_epoch, job.attempts) == ("running", 2, 1)
    assert job.checkpoint_name and storage.local_file(job.checkpoint_name).exists()

    # Not stale yet: the sweeper leaves it; later it queues it again, keeping the checkpoint.
    assert services.training_sweep()["recovered"] == []
    later = timezone.now() + timedelta(hours=1)
    assert services.training_sweep(now=later)["recovered"] == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and job.checkpoint_epoch == 2

    done = services.job_run(job_id=job.pk)
    assert done.status == "succeeded", (done.error, done.traceback)
    rows = list(EpochMetrics.objects.filter(job=job).order_by("epoch"))
    assert [(r.epoch, r.attempt) for r in rows] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert ModelVersion.objects.filter(job=job).count() == 1
    assert [(a["outcome"], a["from_epoch"]) for a in done.attempt_log] == [
        ("lost", 0),
        ("succeeded", 2),
    ]
    # Resumed on the CPU, the curves equal those of a run never interrupted.
    ref = EpochMetrics.objects.filter(job=reference).order_by("epoch")
    assert [round(r.val_loss, 6) for r in rows] == [round(r.val_loss, 6) for r in ref]


def test_cancel_stops_between_batches_and_keeps_the_checkpoint(snapshot, personas, monkeypatch):
    job = _job(snapshot, personas, epochs=20, batch_size=1)
    monkeypatch.setattr(run_module, "CANCEL_CHECK_EVERY_S", 0.0)
    original = run_module.JobCallback.on_batch_end

    def cancel_in_epoch_2(self, epoch, batch, num_batches, loss):
        original(self, epoch, batch, num_batches, loss)
        if epoch == 2 and batch == 2:
            services.job_cancel(job=TrainingJob.objects.get(pk=self.job_id))

    monkeypatch.setattr(run_module.JobCallback, "on_batch_end", cancel_in_epoch_2)
    done = services.job_run(job_id=job.pk)
    assert done.status == "cancelled" and done.stop_reason == "cancelled"
    assert done.checkpoint_epoch == 1 and done.checkpoint_name
    assert list(EpochMetrics.objects.filter(job=job).values_list("epoch", flat=True)) == [1]
    assert not ModelVersion.objects.filter(job=job).exists()
    assert done.attempt_log[-1]["outcome"] == "cancelled"


def test_a_queued_job_cancels_at_once(snapshot, personas):
    job = services.job_cancel(job=_job(snapshot, personas))
    assert job.status == "cancelled"
    assert services.job_run(job_id=job.pk) is None


def test_a_failure_keeps_its_cause_and_traceback(snapshot, personas, monkeypatch):
    job = _job(snapshot, personas)

    def broken(*args, **kwargs):
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(run_module, "train", broken)
    done = services.job_run(job_id=job.pk)
    assert done.status == "failed"
    assert "the device fell over" in done.error and "RuntimeError" in done.traceback
    assert done.attempt_log[-1]["outcome"] == "failed"


def test_the_sweeper_fails_a_job_that_died_too_often(snapshot, personas, settings):
    job = _job(snapshot, personas)
    TrainingJob.objects.filter(pk=job.pk).update(
        status="running", attempts=settings.SWEEP_MAX_ATTEMPTS,
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    assert services.training_sweep()["failed"] == [job.pk]
    job.refresh_from_db()
    assert job.status == "failed" and "stopped without a word" in job.error


def test_a_queued_job_behind_live_gpu_work_is_not_sent_again(snapshot, personas, monkeypatch):
    """A job queued behind a long one on the ``gpu`` queue is waiting its turn: the sweeper
    leaves its message alone (it used to send a copy every SWEEP_QUEUED_AFTER_S). Once nothing
    live runs on the queue, a job queued that long is sent again (its message may be lost)."""
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    long_ago = timezone.now() - timedelta(hours=2)
    running, waiting = _job(snapshot, personas), _job(snapshot, personas)
    TrainingJob.objects.filter(pk=running.pk).update(status="running", attempts=1,
                                                     heartbeat_at=timezone.now())  # fmt: skip
    TrainingJob.objects.filter(pk=waiting.pk).update(heartbeat_at=long_ago)
    assert services.training_sweep() == {"queued_again": [], "recovered": [], "failed": []}
    assert sent == []

    TrainingJob.objects.filter(pk=running.pk).update(status="succeeded")
    TrainingJob.objects.filter(pk=waiting.pk).update(heartbeat_at=long_ago)
    assert services.training_sweep()["queued_again"] == [waiting.pk] and sent == [waiting.pk]


def test_a_live_evaluation_keeps_the_gpu_queue_busy(snapshot, personas):
    from apps.evaluation.models import Evaluation
    from apps.training.services.jobs import gpu_busy
    from tests.apps.evaluation.objects import version_on

    alive_after = timezone.now() - timedelta(minutes=10)
    assert not gpu_busy(alive_after)
    version = version_on(snapshot, personas.researcher_a)
    evaluation = Evaluation.objects.create(lab=snapshot.lab, version=version, snapshot=snapshot,
                                           split="test", status="running",
                                           heartbeat_at=timezone.now())  # fmt: skip
    assert gpu_busy(alive_after)
    Evaluation.objects.filter(pk=evaluation.pk).update(heartbeat_at=alive_after - timedelta(1))
    assert not gpu_busy(alive_after)  # its worker is dead: nothing live


def test_aliases_move_and_are_unique_per_lab(personas):
    one = model_version(personas.lab_a, personas.researcher_a, b"one")
    two = model_version(personas.lab_a, personas.researcher_a, b"two")
    alias = services.alias_set(version=one, name="production", actor=personas.researcher_a)
    moved = services.alias_set(version=two, name="production", actor=personas.researcher_a)
    assert moved.pk == alias.pk and moved.version_id == two.pk
    with pytest.raises(ValidationError):
        services.alias_set(version=two, name="Not A Slug", actor=personas.researcher_a)
    assert services.training_usage_bytes(personas.lab_a.pk) >= len(b"one") + len(b"two")


def test_a_cancelled_job_whose_worker_died_ends_cancelled(snapshot, personas):
    job = _job(snapshot, personas)
    TrainingJob.objects.filter(pk=job.pk).update(
        status="running", attempts=1, cancel_requested=True,
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    assert services.training_sweep()["recovered"] == [job.pk]
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert services.job_run(job_id=job.pk) is None
