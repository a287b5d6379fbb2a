"""Evaluation benchmark: how fast the dashboards serve a big evaluation, and evaluation
throughput against ``ml.bench``'s inference figure.

    .venv/bin/python -m apps.evaluation.bench [--images 200] [--size 640x512] [--repeat 5]
        [--throughput-size 320x256] [--throughput-images 24] [--base 64]

Runs in a throw-away folder (its own SQLite database, MEDIA_ROOT and caches, deleted afterwards).

Pages: a lab of 45 small PNGs read by two readers is snapshotted at ``--size`` (its test split
holds real letterboxed images, pooled and per-reader targets and fixations), and an evaluation of
``--images`` rows is written on that split: each row points at one of the real test items in
turn (so that the gallery's panels render from real arrays) and carries seeded metrics, reader
and leave-one-out metrics, class probabilities and a stored map, as a run would leave them; its
summary and classification metrics are computed by the services a run calls. The evaluation page
and the first gallery page are then requested through Django's test client (the whole
middleware stack, a signed-in viewer), ``--repeat`` times each, after one untimed request; the
median and the largest time and the number of SQL queries are reported, for the big evaluation
and for one of 12 rows (the query count must not grow with the rows). The first gallery page's
panel PNGs are fetched too (their median per panel).

Throughput: a real evaluation run (``evaluation_run``, the task's body) of an untrained MT-UNet
(``--base``) on the test split of a snapshot at ``--throughput-size`` with
``--throughput-images`` test images, and in the same process ``ml.bench``'s inference
measurement of the default path at the same size, base and batch (the run's batch of 4): the
evaluation's images/s (prediction, scoring against the pool and each reader, stored maps, rows)
against the forward pass alone. Prints a JSON report naming the CPU.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import time
from typing import Any


def _timed(client, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    answer = client.get(url)  # untimed: templates and static manifests load once
    assert answer.status_code == 200, (url, answer.status_code, answer.content[:500])
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            answer = client.get(url)
            times.append(time.perf_counter() - started)
        assert answer.status_code == 200, url
    return {
        "url": url,
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "queries": len(queries),
        "bytes": len(answer.content),
        "html": answer.content.decode(),
    }


def _synthetic_rows(evaluation, items, n: int, seed: int) -> None:
    """``n`` rows as a run leaves them, over the real test ``items`` in turn."""
    import numpy as np

    from apps.core import storage
    from apps.evaluation.models import METRICS, EvaluationImage
    from apps.evaluation.services import stored_map
    from apps.evaluation.services.run import map_bytes

    rng = np.random.default_rng(seed)
    shape = tuple(evaluation.snapshot.choices["resolution"])
    names = []
    for _ in range(len(items)):  # one stored map per real item, shared by its rows
        smap = stored_map(rng.gamma(0.5, size=shape))
        data = map_bytes(smap)
        stored = storage.put(app="evaluation", lab_id=evaluation.lab_id, kind="maps",
                             fh=io.BytesIO(data), ext="npz")  # fmt: skip
        names.append((stored.name, len(data)))

    def metrics() -> dict[str, float]:
        return {m: float(rng.uniform(0.1, 0.9)) for m in METRICS}

    rows = []
    for i in range(n):
        item = items[i % len(items)]
        probs = rng.dirichlet(np.ones(len(evaluation.classes)))
        pred = int(probs.argmax())
        row_metrics = metrics()
        rows.append(EvaluationImage(
            evaluation=evaluation, item=item, key=f"{item.key}-{i:04d}",
            label=item.label_index, pred=pred, correct=pred == item.label_index,
            probs=probs.tolist(), map_name=names[i % len(items)][0],
            map_size=names[i % len(items)][1], readers=["R1", "R2"],
            reader_metrics={"R1": metrics(), "R2": metrics()}, centre_metrics=metrics(),
            loo_metrics={"R1": metrics(), "R2": metrics()}, **row_metrics,
        ))  # fmt: skip
    EvaluationImage.objects.bulk_create(rows, batch_size=500)


def _evaluation_of(snapshot, version, user, n: int, seed: int):
    import numpy as np

    from apps.datasets.models import SnapshotItem
    from apps.evaluation import services
    from apps.evaluation.models import Evaluation, EvaluationImage
    from ml.metrics import classification_metrics

    items = list(SnapshotItem.objects.filter(snapshot=snapshot, split="test").order_by("key"))
    evaluation = services.evaluation_create(
        version=version, snapshot=snapshot, split="test", actor=user, enqueue=False,
        name=f"{n} rows",
    )  # fmt: skip
    _synthetic_rows(evaluation, items, n, seed)
    rows = EvaluationImage.objects.filter(evaluation=evaluation)
    labelled = list(rows.values_list("label", "probs"))
    classification = classification_metrics(
        np.array([lab for lab, _ in labelled]), np.array([p for _, p in labelled]),
        evaluation.classes,
    )  # fmt: skip
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status="succeeded", done=n, total=n, summary=services.evaluation_summarize(rows),
        classification=json.loads(json.dumps(classification, default=float)),
    )  # fmt: skip
    evaluation.refresh_from_db()
    return evaluation


def _version(snapshot, user, *, base: int, seed: int):
    """A registered version holding an untrained MT-UNet of ``base`` channels (seeded), made as
    a succeeded job makes one."""
    import torch

    from apps.core import storage
    from apps.training import services as training
    from apps.training.models import TrainingJob
    from ml.checkpoint import FORMAT
    from ml.models import create_model

    torch.manual_seed(seed)
    model = create_model("mtunet", base_channels=base, num_classes=len(snapshot.classes))
    out = io.BytesIO()
    torch.save({"format": FORMAT, "model_name": "mtunet", "model_config": dict(model.config),
                "model": model.state_dict()}, out)  # fmt: skip
    stored = storage.put(app="training", lab_id=snapshot.lab_id, kind="checkpoints",
                         fh=io.BytesIO(out.getvalue()), ext="pt")  # fmt: skip
    job = training.job_create(snapshot=snapshot, actor=user, enqueue=False,
                              overrides={"base_channels": base})  # fmt: skip
    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded", best_name=stored.name,
                                                 best_size=len(out.getvalue()))  # fmt: skip
    job.refresh_from_db()
    return training.version_create_for_job(job=job)


def _pages(args, lab, user) -> dict[str, Any]:
    import re

    from django.test import Client

    from apps.datasets.bench import add_readings, build_snapshot, ingest_pngs

    size = [int(v) for v in args.size.lower().split("x")]
    images = ingest_pngs(lab, user, 45, 300, 250, seed=args.seed)
    add_readings(lab, user, images, ["R1", "R2"], fixations=12, seed=args.seed)
    snapshot = build_snapshot(lab, user, "pages", resolution=size)
    version = _version(snapshot, user, base=4, seed=args.seed)
    client = Client(HTTP_HOST="localhost")  # one of ALLOWED_HOSTS
    client.force_login(user)
    out: dict[str, Any] = {"size": size}
    for label, n in (("small", 12), ("big", args.images)):
        evaluation = _evaluation_of(snapshot, version, user, n, args.seed)
        page = _timed(client, f"/evaluations/{evaluation.pk}/", args.repeat)
        gallery = _timed(client, f"/evaluations/{evaluation.pk}/gallery/?ordering=cc",
                         args.repeat)  # fmt: skip
        panels = sorted(set(re.findall(r'src="([^"]*panel[^"]*)"', gallery["html"])))
        panel_times = []
        for url in panels:
            url = url.replace("&amp;", "&")
            started = time.perf_counter()
            answer = client.get(url)
            panel_times.append(time.perf_counter() - started)
            assert answer.status_code == 200 and answer.content[:4] == b"\x89PNG", url
        out[label] = {
            "rows": n,
            "evaluation_page": {k: v for k, v in page.items() if k != "html"},
            "gallery_first_page": {k: v for k, v in gallery.items() if k != "html"},
            "gallery_panels": len(panels),
            "panel_median_s": round(statistics.median(panel_times), 4) if panel_times else None,
            # The page and every panel of it one after the other (a browser fetches the panels
            # several at a time, and caches them by ETag).
            "gallery_with_panels_serial_s": round(gallery["median_s"] + sum(panel_times), 3),
        }
    out["queries_grow_with_rows"] = any(
        out["big"][p]["queries"] > out["small"][p]["queries"]
        for p in ("evaluation_page", "gallery_first_page")
    )
    out["under_2_s"] = all(
        out["big"][p]["max_s"] < 2.0 for p in ("evaluation_page", "gallery_first_page")
    )
    return out


def _throughput(args) -> dict[str, Any]:
    from apps.datasets.bench import add_readings, bench_lab, build_snapshot, ingest_pngs
    from apps.evaluation import services
    from apps.evaluation.services.run import BATCH_SIZE
    from ml.bench import _measure, _setup
    from ml.runtime import Runtime

    size = [int(v) for v in args.throughput_size.lower().split("x")]
    lab, user = bench_lab("Throughput lab")
    n_images = max(12, -(-args.throughput_images * 10 // 2))  # 2 of each 10 go to test
    images = ingest_pngs(lab, user, n_images, 300, 250, seed=args.seed + 1)
    add_readings(lab, user, images, ["R1", "R2"], fixations=12, seed=args.seed + 1)
    snapshot = build_snapshot(lab, user, "throughput", resolution=size)
    version = _version(snapshot, user, base=args.base, seed=args.seed)
    evaluation = services.evaluation_create(version=version, snapshot=snapshot, actor=user,
                                            enqueue=False)  # fmt: skip
    started = time.perf_counter()
    done = services.evaluation_run(evaluation_id=evaluation.pk)
    wall = time.perf_counter() - started
    assert done.status == "succeeded", (done.error, done.traceback)
    runtime = Runtime.create("auto", "auto")
    _train, infer = _setup(runtime, tuple(size), args.base, BATCH_SIZE, args.seed)
    steps = max(2, -(-done.total // BATCH_SIZE))
    measured = _measure(infer, runtime, 1, steps)
    reference = BATCH_SIZE / measured["seconds_per_step"]
    rate = done.total / wall
    return {
        "size": size,
        "base_channels": args.base,
        "batch": BATCH_SIZE,
        "images": done.total,
        "evaluation_images_per_s": round(rate, 4),
        "evaluation_seconds": round(wall, 2),
        "ml_bench_infer_images_per_s": round(reference, 4),
        "ratio": round(rate / reference, 3),
        "precision": runtime.precision,
        "device": str(runtime.device),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="rows of the big evaluation")
    parser.add_argument("--size", default="640x512", help="model resolution HxW (pages)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--throughput-size", default="320x256")
    parser.add_argument("--throughput-images", type=int, default=24)
    parser.add_argument("--base", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)

    from apps.datasets.bench import bench_lab, throwaway_django

    work = throwaway_django(
        "evaluation-bench-", EVALUATE_NEW_VERSIONS="false", SECURE_SSL_REDIRECT="false"
    )
    try:
        import torch
        from django.core.management import call_command

        from ml.bench import _processor_name

        # As deployed (DEBUG off): static files collected, served with hashed names.
        call_command("collectstatic", "--noinput", verbosity=0)

        lab, user = bench_lab()
        report = {
            "pages": _pages(args, lab, user),
            "throughput": None if args.skip_throughput else _throughput(args),
            "processor": _processor_name(),
            "threads": torch.get_num_threads(),
        }
        print(json.dumps(report, indent=2))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=1)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
