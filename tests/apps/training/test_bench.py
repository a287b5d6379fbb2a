"""The training-job benchmark's report, at a tiny size (it runs in its own process, with its
own throw-away database and media folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings


def test_bench_reports_the_job_and_ml_bench_with_their_ratio(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "apps.training.bench", "--size", "32x32", "--base", "4",
         "--images", "15", "--image-size", "40x30", "--epochs", "2", "--warmup", "0",
         "--steps", "1", "--device", "cpu", "--json", str(out)],
        cwd=settings.BASE_DIR, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert (report["size"], report["batch"], report["base_channels"]) == ([32, 32], 2, 4)
    assert report["train_images"] == 6 and report["batches_per_epoch"] == 3
    job, reference = report["job"], report["ml_bench_default"]
    assert job["status"] == "succeeded" and job["device"] == "cpu"
    assert [e["epoch"] for e in job["epochs"]] == [1, 2]
    for epoch in job["epochs"]:
        assert 0 < epoch["train_seconds"] <= epoch["epoch_seconds"]
    assert job["images_per_s"] > 0 and reference["train_images_per_s"] > 0
    assert reference["precision"] == job["precision"]
    ratio = job["images_per_s"] / reference["train_images_per_s"]
    assert report["ratio"] == pytest.approx(ratio, abs=2e-3)
    assert report["meets_target"] == (report["ratio"] >= report["target_ratio"] == 0.9)
