"""The demo's loop on its first start (``manage.py demo_loop``): a snapshot of the demo lab, one
``quick`` job whose version becomes ``production`` and is evaluated; a restart trains nothing,
and queues again at once what a stopped worker left."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.datasets.models import DatasetSnapshot
from apps.evaluation import services as evaluation
from apps.evaluation.models import Evaluation
from apps.evaluation.services import demo
from apps.labs.models import Lab, User
from apps.training import services as training
from apps.training.models import ModelAlias, ModelVersion, TrainingJob

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
TINY = {"epochs": 2, "base_channels": 4}


@pytest.fixture
def demo_lab(db):
    call_command("demo_setup", stdout=io.StringIO())
    call_command(
        "make_demo_lab", "--lab", "Demo Lab", "--user", "demo", "--size", "small",
        "--images", "12", "--readers", "2", stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    return Lab.objects.get(name="Demo Lab"), User.objects.get(username="demo")


def _start(lab, user, **kwargs):
    return demo.demo_loop_start(lab=lab, actor=user, overrides=TINY, **kwargs)


def test_first_start_queues_the_loop_and_a_restart_trains_nothing(demo_lab):
    lab, user = demo_lab
    loop = _start(lab, user)
    assert loop.state == "queued" and loop.snapshot.status == "ready"
    assert loop.snapshot.choices["resolution"] == demo.RESOLUTION
    job = loop.job
    assert job.status == "queued" and job.preset == "quick" and job.name == demo.JOB
    assert job.config["max_epochs"] == 2 and job.config["patience"] == demo.OVERRIDES["patience"]
    assert job.alias_on_success == "production"

    again = _start(lab, user)  # restarted before the worker took it
    assert again.state == "training" and again.job.pk == job.pk
    assert DatasetSnapshot.objects.filter(lab=lab).count() == TrainingJob.objects.count() == 1

    training.job_run(job_id=job.pk)
    version = ModelVersion.objects.get(job=job)
    assert ModelAlias.objects.get(lab=lab, name="production").version == version
    queued = Evaluation.objects.get(version=version)
    assert queued.split == "test" and queued.automatic
    evaluation.evaluation_run(evaluation_id=queued.pk)

    after = _start(lab, user)
    assert after.state == "trained" and after.version == version
    assert after.evaluation.pk == queued.pk and after.evaluation.status == "succeeded"
    assert TrainingJob.objects.count() == 1 and Evaluation.objects.count() == 1
    summary = after.evaluation.summary
    assert summary["model"]["cc"]["mean"] is not None
    assert summary["ceiling"]["cc"]["mean"] > summary["centre_bias"]["cc"]["mean"]

    Evaluation.objects.filter(pk=queued.pk).update(status="failed")  # its worker gave up
    again = _start(lab, user)
    assert again.state == "trained" and again.evaluation.pk != queued.pk
    assert again.evaluation.status == "queued" and again.evaluation.split == "test"
    assert again.evaluation.automatic and TrainingJob.objects.count() == 1


def test_a_restart_queues_again_what_the_stopped_worker_left(demo_lab, monkeypatch):
    lab, user = demo_lab
    job = _start(lab, user).job
    # The worker was killed mid-job a moment ago: running, with a fresh heartbeat.
    TrainingJob.objects.filter(pk=job.pk).update(status="running", attempts=1,
                                                 heartbeat_at=timezone.now())  # fmt: skip
    sent = []
    monkeypatch.setattr(training, "_enqueue", sent.append)
    loop = _start(lab, user)
    assert loop.state == "training" and loop.job.pk == job.pk
    assert loop.recovered == {"training jobs": [job.pk]} and sent == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and "worker lost" in job.log_tail

    untouched = _start(lab, user, recover=False)
    assert untouched.recovered == {}


def test_a_failed_job_is_followed_by_a_new_one(demo_lab):
    lab, user = demo_lab
    first = _start(lab, user).job
    TrainingJob.objects.filter(pk=first.pk).update(status="failed", error="out of memory")
    loop = _start(lab, user)
    assert loop.state == "queued" and loop.job.pk != first.pk
    assert loop.snapshot.pk == first.snapshot_id  # the ready snapshot is kept


def test_the_command_says_where_to_follow_the_job(demo_lab):
    out = io.StringIO()
    call_command("demo_loop", "--url", "http://127.0.0.1:8123", "--epochs", "2", stdout=out)
    job = TrainingJob.objects.get()
    text = out.getvalue()
    assert f"http://127.0.0.1:8123/training/{job.pk}/" in text, text
    assert "Demo snapshot: " in text and "'production'" in text
    assert job.config["max_epochs"] == 2


def test_the_command_refuses_a_missing_lab(db):
    with pytest.raises(CommandError, match="No lab named 'Nowhere'"):
        call_command("demo_loop", "--lab", "Nowhere", stdout=io.StringIO())
