"""Training-job benchmark: a job's training throughput against ``ml.bench``'s default path.

    .venv/bin/python -m apps.training.bench [--size 320x256] [--batch 2] [--base 64]
        [--images 81] [--epochs 1]

Runs in a throw-away folder (its own SQLite database, MEDIA_ROOT and storage cache, deleted
afterwards, so nothing touches var/). A lab of ``--images`` small PNGs (three classes in turn),
each read by two readers, is snapshotted at ``--size`` (letterboxed; the 2/1/7 split puts 54 of
the default 81 images in train: 27 batches of 2, so that the one-off costs of a first epoch
weigh little); a ``TrainingJob`` (preset ``paper`` with ``--base``,
``--batch`` and ``--epochs``) is created through ``apps.training.services`` and run in this
process by the Celery task's body (``training_run_task``, which calls ``job_run``), with
``TRAINING_BATCH_PAUSE_S=0``. The job's images/s per epoch are read back from its
``EpochMetrics`` rows: the training set over the training phase of the epoch (``train_time_s``:
loading the batches from the snapshot, the steps, the per-batch heartbeat and cancel checks;
validation and checkpoints left out), and over all epochs together (the job's figure). The
first epoch pays the one-off costs (oneDNN kernels, first touch of the weights and the
snapshot's files); ``--epochs 2`` shows a warm epoch too.

Then, in the same process, ``ml.bench``'s training measurement of the default path (the same
functions: ``_setup`` and ``_measure``, fixed data on the device, ``--warmup`` untimed and
``--steps`` timed steps, by default as many as the job's batches, so that both figures average
over about as long a time on a shared machine) at the same size, batch and base, and the ratio
of the two. The target
is a ratio of at least 0.9. Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time


def _ml_bench_default(size: tuple[int, int], base: int, batch: int, warmup: int, steps: int,
                      device: str, seed: int) -> dict:  # fmt: skip
    """``ml.bench``'s training measurement of its default path (``precision="auto"``)."""
    from ml.bench import _measure, _setup
    from ml.runtime import Runtime

    runtime = Runtime.create(device, "auto")
    train_step, _infer = _setup(runtime, size, base, batch, seed)
    measured = _measure(train_step, runtime, warmup, steps)
    return {
        "precision": runtime.precision,
        "channels_last": runtime.channels_last,
        "device": str(runtime.device),
        "warmup_steps": warmup,
        "timed_steps": steps,
        "seconds_per_step": round(measured["seconds_per_step"], 4),
        "train_images_per_s": round(batch / measured["seconds_per_step"], 4),
        "peak_memory_mib": round(measured["peak_memory_mib"], 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="320x256", help="model resolution HxW")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--base", type=int, default=64, help="MT-UNet base channels")
    parser.add_argument("--images", type=int, default=81, help="images in the lab")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--image-size", default="300x250", help="HxW of the lab's PNGs")
    parser.add_argument("--warmup", type=int, default=1, help="ml.bench's untimed steps")
    parser.add_argument(
        "--steps", type=int, default=0,
        help="ml.bench's timed steps (default: as many as the job's batches in all its epochs)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch CPU threads for the job and ml.bench (0: torch's default)",
    )  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    image_hw = tuple(int(v) for v in args.image_size.lower().split("x"))
    if args.images < 12:
        parser.error("--images must be at least 12: 4 per class, so that every class trains")

    from apps.datasets.bench import (
        add_readings,
        bench_lab,
        build_snapshot,
        ingest_pngs,
        throwaway_django,
    )

    work = throwaway_django("training-bench-", TRAINING_BATCH_PAUSE_S="0")
    try:
        import torch

        from apps.training import services
        from apps.training.models import EpochMetrics
        from apps.training.tasks import training_run_task
        from ml.bench import _processor_name
        from ml.runtime import Runtime

        lab, user = bench_lab()
        images = ingest_pngs(lab, user, args.images, *image_hw, seed=args.seed)
        add_readings(lab, user, images, ["R1", "R2"], fixations=10, seed=args.seed)
        snapshot = build_snapshot(lab, user, "bench", resolution=list(size))
        job = services.job_create(
            snapshot=snapshot, actor=user, preset="paper", enqueue=False,
            overrides={"base_channels": args.base, "batch_size": args.batch,
                       "epochs": args.epochs, "seed": args.seed},
        )  # fmt: skip
        if args.threads:
            torch.set_num_threads(args.threads)
        job.config = {**job.config, "device": args.device, "num_threads": args.threads}
        job.save(update_fields=["config"])
        started = time.perf_counter()
        status = training_run_task(job.pk)
        job_seconds = time.perf_counter() - started
        job.refresh_from_db()
        if status != "succeeded":
            raise RuntimeError(f"the job ended {status}: {job.error}\n{job.traceback}")
        rows = list(EpochMetrics.objects.filter(job=job).order_by("epoch"))
        n_train = sum(snapshot.counts["train"].values())
        epochs = [
            {
                "epoch": row.epoch,
                "images_per_s": round(row.images_per_s, 4),
                "train_seconds": round(n_train / row.images_per_s, 2),
                "epoch_seconds": round(row.time_s, 2),
            }
            for row in rows
        ]
        job_rate = n_train * len(rows) / sum(n_train / row.images_per_s for row in rows)
        batches = -(-n_train // args.batch)
        steps = args.steps or batches * len(rows)
        reference = _ml_bench_default(
            size, args.base, args.batch, args.warmup, steps, args.device, args.seed
        )
        ratio = round(job_rate / reference["train_images_per_s"], 3)
        report = {
            "size": list(size),
            "batch": args.batch,
            "base_channels": args.base,
            "images": args.images,
            "train_images": n_train,
            "val_images": sum(snapshot.counts["val"].values()),
            "batches_per_epoch": batches,
            "job": {
                "status": job.status,
                "device": job.device,
                "precision": Runtime.create(
                    job.config["device"], job.config["precision"]
                ).precision,
                "epochs": epochs,
                "images_per_s": round(job_rate, 4),
                "wall_seconds": round(job_seconds, 2),
            },
            "ml_bench_default": reference,
            "ratio": ratio,
            "target_ratio": 0.9,
            "meets_target": ratio >= 0.9,
            "processor": _processor_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        print(json.dumps(report, indent=2))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=1)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
