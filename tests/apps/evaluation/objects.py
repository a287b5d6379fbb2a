"""Snapshots, model versions and evaluations for the tests: a version holds a real checkpoint of
an untrained tiny MT-UNet (seeded), registered as a succeeded job would register it."""

from __future__ import annotations

import io

import torch

from apps.core import storage
from apps.datasets import services as datasets
from apps.datasets.models import DatasetSnapshot
from apps.evaluation import services
from apps.evaluation.models import Evaluation
from apps.labs.models import Lab
from apps.training import services as training
from apps.training.models import ModelVersion, TrainingJob
from ml.checkpoint import FORMAT
from ml.models import create_model
from tests.apps.datasets.objects import lab_with_data


def two_reader_snapshot(lab: Lab, user, *, readers=("R1", "R2"), name="eval-me",
                        per_class=(6, 6, 6), **choices) -> DatasetSnapshot:  # fmt: skip
    """A built 64 x 64 snapshot: ``per_class`` images of three classes, each read by every
    reader (the test split has 20 % of them)."""
    from apps.imaging.models import Image

    if not Image.objects.filter(lab=lab, key="normal-00").exists():  # data once per lab
        lab_with_data(lab, user, per_class=per_class, readers=readers)
    snap = datasets.snapshot_create(lab=lab, actor=user, name=name, enqueue=False,
                                    resolution=[64, 64], **choices)  # fmt: skip
    built = datasets.snapshot_build(snapshot_id=snap.pk)
    assert built.status == "ready", built.error
    return built


def checkpoint_bytes(num_classes: int, seed: int = 0, base: int = 4) -> bytes:
    """A checkpoint ``ml.checkpoint.load_model`` reads: an untrained MT-UNet, seeded."""
    torch.manual_seed(seed)
    model = create_model("mtunet", base_channels=base, num_classes=num_classes)
    out = io.BytesIO()
    torch.save({"format": FORMAT, "model_name": "mtunet", "model_config": dict(model.config),
                "model": model.state_dict()}, out)  # fmt: skip
    return out.getvalue()


def version_on(snapshot: DatasetSnapshot, user, *, seed: int = 0) -> ModelVersion:
    """A registered version of ``snapshot``'s lab holding a seeded untrained model (its
    automatic evaluation is left out: the tests start their own)."""
    job = training.job_create(snapshot=snapshot, actor=user, overrides={"base_channels": 4},
                              enqueue=False)  # fmt: skip
    data = checkpoint_bytes(len(snapshot.classes), seed=seed)
    stored = storage.put(app="training", lab_id=snapshot.lab_id, kind="checkpoints",
                         fh=io.BytesIO(data), ext="pt")  # fmt: skip
    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded", best_name=stored.name,
                                                 best_size=len(data))  # fmt: skip
    job.refresh_from_db()
    version = training.version_create_for_job(job=job)
    Evaluation.objects.filter(version=version, automatic=True).delete()
    return version


def evaluated(snapshot: DatasetSnapshot, user, *, seed: int = 0, split: str = "test"):
    """A succeeded evaluation of a seeded version on ``split`` (run in this process)."""
    version = version_on(snapshot, user, seed=seed)
    evaluation = services.evaluation_create(version=version, snapshot=snapshot, split=split,
                                            actor=user, enqueue=False)  # fmt: skip
    done = services.evaluation_run(evaluation_id=evaluation.pk)
    assert done.status == "succeeded", (done.error, done.traceback)
    return done
